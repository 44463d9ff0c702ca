"""Training with the paper's schedule, exact resume from checkpoints, and recorded results.

A run lives in one directory:

    config.json      the TrainConfig (and the model architecture it implies)
    checkpoint.npz   parameters, Adam state, counters and history; rewritten atomically
    progress.json    the learning curve so far (readable while a run is going on)
    metrics.json     final results: k=5000 test log-likelihood, train log-likelihood,
                     active units, per-epoch history, wall times, environment
    weights.npz      the final (or validation-selected) parameters, float32 arrays
    tensorboard/     TensorBoard scalars: bounds, learning rate, active units per layer

Randomness is a pure function of (seed, step): the data order of epoch e is a permutation
drawn from ``default_rng([seed, e])``, and the Bernoulli binarization and the samples of
step s use stateless TF seeds derived from (seed, s). A run resumed from a checkpoint
therefore does exactly what the uninterrupted run would have done.

Ctrl-C (SIGINT) or SIGTERM during training finishes the compiled call under way, writes a
checkpoint there and raises KeyboardInterrupt, so an interrupted run loses no step; a
second signal stops at once, from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from iwae_lib import adam, checkpoints, data, estimators, evaluation, models, quantized, runinfo, schedules
from iwae_lib._quiet import import_tensorflow_quietly
from iwae_lib.config import TrainConfig, config_differences

tf = import_tensorflow_quietly()

CONFIG_FILE, CHECKPOINT_FILE, PROGRESS_FILE = "config.json", "checkpoint.npz", "progress.json"
METRICS_FILE, WEIGHTS_FILE = "metrics.json", "weights.npz"
# Per-image estimates of the final test log-likelihood ("log_likelihood" [N] float64, with
# "k" and "seed"): a recorded mean can then be checked image by image (tests/test_recorded_results.py).
TEST_LL_FILE = "test_log_likelihoods.npz"
# Seeds of the evaluations, as offsets from the run's seed: held-out monitoring during
# training ("valid", on test images too), the final test and train estimates, active units.
EVAL_SEED_OFFSETS = {"valid": 1, "test": 2, "train": 3, "active_units": 4}
TRAIN_EVAL_BINARIZATION_SEED = 20151103  # fixed binarization of the training images scored at the end


# ----------------------------------------------------------------------------- compiled steps


def binarize_batch(x, seed):
    """Dynamic binarization inside a compiled step: Bernoulli(x) draws with a stateless seed [2]."""
    return tf.cast(tf.random.stateless_uniform(tf.shape(x), seed=seed) < x, tf.float32)


def compile_train_chunk(params, m, v, gradient_fn, seed: int, batch_size: int, x_size: int,
                        prepare_batch=None, adam_options=None, ema=None, ema_decay: float = 0.0):
    """A compiled function running several Adam steps of any gradient function in one call.

    Args:
        params, m, v: dicts of tf.Variable (parameters and Adam moments), updated in place.
        gradient_fn: ``(params, x [B, x_size], seed [2]) -> (bound [B], grads dict)``.
        seed: the run's integer seed.
        prepare_batch: optional ``(x, seed [2]) -> x`` applied to each batch first (e.g.
            :func:`binarize_batch`).
        adam_options: beta1, beta2, epsilon (the paper's by default).
        ema, ema_decay: optional dict of tf.Variable (same shapes as params) updated after
            each step by :func:`update_moving_average`.

    Returns:
        ``train_chunk(x_chunk [S, B, x_size], learning_rate [], first_step int64 [])`` ->
        the mean bound over the S * B examples. Step s (0-based, global) prepares its batch
        with seed (seed, s) folded with 0, draws its samples with (seed, s) folded with 1,
        and makes Adam update number s + 1: a pure function of (seed, s), so a resumed run
        repeats exactly what an uninterrupted one does.
    """
    hyper = dict(adam.PAPER_ADAM, **(adam_options or {}))
    spec = [tf.TensorSpec([None, batch_size, x_size], tf.float32),
            tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int64)]

    @tf.function(input_signature=spec)
    def train_chunk(x_chunk, learning_rate, first_step):
        total = tf.constant(0.0)
        n = tf.shape(x_chunk)[0]
        for i in tf.range(n):
            step = first_step + tf.cast(i, tf.int64)
            step_seed = tf.stack([tf.constant(seed, tf.int64), step])
            x = x_chunk[i]
            if prepare_batch is not None:
                x = prepare_batch(x, tf.random.experimental.stateless_fold_in(step_seed, 0))
            bound, grads = gradient_fn(params, x, tf.random.experimental.stateless_fold_in(step_seed, 1))
            adam.apply_adam(params, grads, m, v, tf.cast(step + 1, tf.float32), learning_rate, **hyper)
            if ema is not None:
                update_moving_average(ema, params, ema_decay, tf.cast(step + 1, tf.float32))
            total += tf.reduce_mean(bound)
        return total / tf.cast(n, tf.float32)

    return train_chunk


def update_moving_average(ema, params, decay: float, step):
    """In place: ema <- d * ema + (1 - d) * params, with d = min(decay, (1 + t) / (10 + t)).

    The smaller rate over the first steps (t = the 1-based update number, a float32 scalar)
    lets the average forget its initial value quickly, as Polyak averaging over a window
    that grows with t would; after about 10 / (1 - decay) steps d is ``decay``, an
    average over the last ~1 / (1 - decay) steps.
    """
    d = tf.minimum(tf.constant(decay, tf.float32), (1.0 + step) / (10.0 + step))
    for name, var in params.items():
        ema[name].assign(d * ema[name] + (1.0 - d) * var)


def make_train_chunk(params, m, v, config: TrainConfig, dynamic: bool, ema=None):
    """:func:`compile_train_chunk` for a TrainConfig's objective and gradient estimator."""
    model = config.model_config()

    def gradient_fn(params, x, seed):
        return estimators.loss_and_gradients(params, model, x, config.k, seed, config.objective,
                                             config.estimator, config.precision, **config.bound_options())

    return compile_train_chunk(params, m, v, gradient_fn, config.seed, config.batch_size, model.x_size,
                               binarize_batch if dynamic else None,
                               {"beta1": config.beta1, "beta2": config.beta2, "epsilon": config.epsilon},
                               ema, config.ema_decay)


def epoch_order(seed: int, epoch: int, n_train: int, batch_size: int) -> np.ndarray:
    """Indices of the training examples for each step of an epoch: [n_batches, batch_size]."""
    n_batches = n_train // batch_size
    return np.random.default_rng([seed, epoch]).permutation(n_train)[: n_batches * batch_size].reshape(n_batches, batch_size)


# ----------------------------------------------------------------------------- state


def _fresh_state(config, model, train_mean):
    params = models.init_params(model, config.seed, train_mean)
    zeros = {n: np.zeros_like(p) for n, p in params.items()}
    second_moments = {n: np.full_like(p, config.adam_v_init) for n, p in params.items()}
    counters = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "epoch_bound_sum": 0.0,
                "epoch_steps": 0, "history": [], "stage_seconds": {}, "train_seconds": 0.0,
                "best": None, "evals_since_best": 0, "stopped_early": False}
    return params, zeros, second_moments, None, counters, None


def save_checkpoint(path, params, m, v, best, counters, ema=None):
    """Everything needed to resume, in one atomically written .npz."""
    arrays = {}
    for prefix, group in (("param", params), ("adam_m", m), ("adam_v", v), ("best", best or {}), ("ema", ema or {})):
        arrays.update({f"{prefix}:{n}": np.asarray(value) for n, value in group.items()})
    arrays["counters_json"] = np.array(json.dumps(counters))
    checkpoints.save_arrays(path, arrays)


def load_checkpoint(path):
    """Inverse of save_checkpoint: (params, m, v, best or None, counters, ema or None)."""
    try:
        arrays = checkpoints.load_arrays(path)
        counters = json.loads(str(arrays.pop("counters_json")))
    except Exception as err:  # a checkpoint is written atomically, so this means outside damage
        reason = err.reason if isinstance(err, checkpoints.DamagedFile) else f"{type(err).__name__}: {err}"
        raise RuntimeError(f"checkpoint {path} is damaged and was not used ({reason}), so the run cannot continue "
                           "from it: put back an intact copy, or delete it to train the run again from the start"
                           ) from err
    groups = {"param": {}, "adam_m": {}, "adam_v": {}, "best": {}, "ema": {}}
    for key, value in arrays.items():
        prefix, name = key.split(":", 1)
        groups[prefix][name] = value
    return (groups["param"], groups["adam_m"], groups["adam_v"], groups["best"] or None, counters,
            groups["ema"] or None)


# ----------------------------------------------------------------------------- run directory


def prepare_run_dir(out_dir, config: TrainConfig) -> Path:
    """Create the run directory (or check that an existing one holds the same run)."""
    out = checkpoints.ensure_writable_dir(out_dir)
    record = {"train": config.to_dict(), "model": config.model_config().to_dict()}
    existing = out / CONFIG_FILE
    if existing.exists():
        differing = config_differences(checkpoints.load_json(existing).get("train", {}), record["train"])
        if differing:
            raise ValueError(
                f"{out} already holds a run with a different configuration (differs in: {', '.join(differing)}). "
                "Use another output directory, or delete this one to start over.")
    else:
        checkpoints.save_json(existing, record)
    return out


def _as_arrays(variables: dict) -> dict:
    """name -> NumPy array of a dict of tf.Variable."""
    return {n: var.numpy() for n, var in variables.items()}


def monitor_rows(num_images, eval_size):
    """Rows [min(eval_size, num_images)] of the test images whose bound is tracked during
    training: spread evenly over the file, not its first rows. Larochelle's binarized MNIST
    test file is sorted by digit class, so its first 2000 images are mostly zeros and ones,
    whose k=5 bound lies some 14 nats above that of the whole file."""
    if eval_size >= num_images:
        return np.arange(num_images)
    return np.floor(np.arange(eval_size) * (num_images / eval_size)).astype(np.int64)


def _heldout_bound(params, model, x, k, seed):
    """Mean k-sample bound over the images x [N, x_size] (a float)."""
    chunk = min(k, 1000)
    return float(np.mean(evaluation.log_likelihood(params, model, x, k=k, seed=seed, chunk_size=chunk,
                                                   batch_size=max(1, 20000 // chunk), progress=False)))


# ----------------------------------------------------------------------------- training


@contextlib.contextmanager
def stop_requests():
    """While active, SIGINT and SIGTERM set ``requested["signal"]`` instead of stopping the
    process; the training loop checks it between compiled calls. A second signal raises
    KeyboardInterrupt at once. Outside the main thread (where handlers cannot be set) it
    yields a dict that stays empty."""
    requested = {}

    def handler(signum, frame):
        if requested:
            raise KeyboardInterrupt
        requested["signal"] = signum

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield requested
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def train(config: TrainConfig, out_dir, progress: bool = True, dataset=None) -> dict:
    """Train (or resume, or just return the results of) the run in ``out_dir``.

    Args:
        config: the run's TrainConfig (validated on construction).
        out_dir: run directory; if it holds a checkpoint of the same config, the run resumes.
        progress: show tqdm progress bars.
        dataset: optional preloaded ``data.load_dataset`` result (tests, notebooks).

    Returns:
        the metrics dict, also written to ``out_dir/metrics.json``.

    Raises:
        checkpoints.RunInUse: another process is training the same directory.
    """
    out = prepare_run_dir(out_dir, config)
    if (out / METRICS_FILE).exists():
        return checkpoints.load_json(out / METRICS_FILE)
    with checkpoints.exclusive_run(out):
        return _train(config, out, progress, dataset)


def _train(config: TrainConfig, out: Path, progress: bool, dataset) -> dict:
    """:func:`train` of a prepared, unfinished run directory that this process holds."""
    ds = dataset if dataset is not None else data.load_dataset(config.dataset, config.validation_size, config.seed)
    ds = prepare_data(config, ds)
    model = config.model_config()
    train_x = ds.train if config.train_size is None else ds.train[: config.train_size]
    stage_list = schedules.stages(config.schedule, config.epochs, config.learning_rate)
    rates = schedules.epoch_rates(stage_list)
    stage_ends = set(np.cumsum([n for n, _ in stage_list]).tolist())

    ckpt_path = out / CHECKPOINT_FILE
    if ckpt_path.exists():
        params_np, m_np, v_np, best, counters, ema_np = load_checkpoint(ckpt_path)
    else:
        params_np, m_np, v_np, best, counters, ema_np = _fresh_state(config, model, ds.train_mean)
    if config.ema_decay > 0 and ema_np is None:
        ema_np = {n: np.array(p, copy=True) for n, p in params_np.items()}  # the average starts at the initial weights
    if counters["epoch"] < len(rates):  # record the code and machine of every training session
        counters.setdefault("sessions", []).append(
            {"from_epoch": counters["epoch"], "from_step": counters["global_step"], "environment": runinfo.environment()})
    params = models.as_variables(params_np)
    m, v = models.as_variables(m_np), models.as_variables(v_np)
    ema = models.as_variables(ema_np) if config.ema_decay > 0 else None
    train_chunk = make_train_chunk(params, m, v, config, ds.dynamic, ema)
    writer = tf.summary.create_file_writer(str(out / "tensorboard"))
    monitor = {"test": ds.test[monitor_rows(len(ds.test), config.eval_size)]}
    if ds.valid is not None:
        monitor["valid"] = ds.valid[: config.eval_size]

    def snapshot():
        """The weights that are evaluated and kept: the moving average when there is one."""
        return _as_arrays(ema or params)

    def rate_at(progress):
        return schedules.rate_at(config.schedule, rate, progress, len(rates), config.warmup_epochs)

    def checkpoint():
        save_checkpoint(ckpt_path, _as_arrays(params), _as_arrays(m), _as_arrays(v), best, counters,
                        _as_arrays(ema) if ema is not None else None)
        checkpoints.save_json(out / PROGRESS_FILE, {"epochs_completed": counters["epoch"],
                                                      "total_epochs": len(rates), "history": counters["history"]})

    def count_time(since, stage):
        """Add the seconds since ``since`` to the training time (in all and of ``stage``); returns now."""
        now = time.monotonic()
        counters["train_seconds"] += now - since
        counters["stage_seconds"][str(stage)] = counters["stage_seconds"].get(str(stage), 0.0) + (now - since)
        return now

    n_batches = len(train_x) // config.batch_size
    last_save = time.monotonic()
    bar = tqdm(total=len(rates), initial=counters["epoch"], desc="epochs", unit="epoch", disable=not progress)
    with stop_requests() as stop:
        while counters["epoch"] < len(rates) and not counters["stopped_early"]:
            epoch = counters["epoch"]
            rate, stage = rates[epoch]
            order = epoch_order(config.seed, epoch, len(train_x), config.batch_size)
            started = time.monotonic()
            while counters["step_in_epoch"] < n_batches:
                first = counters["step_in_epoch"]
                idx = order[first: first + config.steps_per_call]
                step_rate = rate_at(epoch + (first + len(idx) / 2) / n_batches)  # the middle of this call's steps
                mean_bound = float(train_chunk(train_x[idx], tf.constant(step_rate, tf.float32),
                                               tf.constant(counters["global_step"], tf.int64)))
                if not math.isfinite(mean_bound):
                    checkpoint_note = f"last checkpoint: epoch {counters['epoch']}, step {counters['step_in_epoch']}"
                    raise FloatingPointError(f"the training bound became {mean_bound} in epoch {epoch + 1}; "
                                             f"try a smaller learning rate ({checkpoint_note})")
                counters["step_in_epoch"] += len(idx)
                counters["global_step"] += len(idx)
                counters["epoch_bound_sum"] += mean_bound * len(idx)
                counters["epoch_steps"] += len(idx)
                bar.set_postfix(stage=stage, bound=f"{counters['epoch_bound_sum'] / counters['epoch_steps']:.2f}")
                if time.monotonic() - last_save >= config.checkpoint_seconds and counters["step_in_epoch"] < n_batches:
                    started = count_time(started, stage)
                    checkpoint()
                    last_save = time.monotonic()
                if stop and counters["step_in_epoch"] < n_batches:  # Ctrl-C / SIGTERM: keep every step done
                    count_time(started, stage)
                    checkpoint()
                    raise KeyboardInterrupt(f"signal {stop['signal']}: checkpoint written")
            count_time(started, stage)
            entry = {"epoch": epoch + 1, "stage": stage,
                     "learning_rate": rate_at(epoch + 0.5),
                     "train_bound": counters["epoch_bound_sum"] / max(1, counters["epoch_steps"]),
                     "train_seconds": counters["train_seconds"]}
            evaluate_now = config.eval_every and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == len(rates))
            if evaluate_now:
                weights = snapshot()
                for split, x in monitor.items():
                    entry[f"{split}_bound"] = _heldout_bound(weights, model, x, config.eval_k or config.k,
                                                             config.seed + EVAL_SEED_OFFSETS["valid"])
                held_out = monitor.get("valid", monitor["test"])
                entry["active_units"] = evaluation.active_units(weights, model, held_out,
                                                               seed=config.seed + EVAL_SEED_OFFSETS["active_units"])["active"]
                if "valid" in monitor:
                    if best is None or entry["valid_bound"] > counters["best"]["valid_bound"]:
                        best, counters["best"] = snapshot(), {"epoch": epoch + 1, "valid_bound": entry["valid_bound"]}
                        counters["evals_since_best"] = 0
                    else:
                        counters["evals_since_best"] += 1
                        if config.patience is not None and counters["evals_since_best"] >= config.patience:
                            counters["stopped_early"] = True
            with writer.as_default(step=epoch + 1):
                for key in ("train_bound", "test_bound", "valid_bound", "learning_rate"):
                    if key in entry:
                        tf.summary.scalar(key, entry[key])
                for layer, count in enumerate(entry.get("active_units", []), 1):
                    tf.summary.scalar(f"active_units/layer{layer}", count)
            counters["history"].append(entry)
            counters.update(epoch=epoch + 1, step_in_epoch=0, epoch_bound_sum=0.0, epoch_steps=0)
            bar.update(1)
            if (epoch + 1) in stage_ends or counters["epoch"] == len(rates) or counters["stopped_early"] \
                    or time.monotonic() - last_save >= config.checkpoint_seconds or stop:
                checkpoint()
                last_save = time.monotonic()
            if stop:  # arrived during the epoch's last call or its evaluation: checkpointed just above
                raise KeyboardInterrupt(f"signal {stop['signal']}: checkpoint written")
    bar.close()
    writer.flush()
    return finish(config, out, best if best is not None else snapshot(), counters, ds, progress)


def prepare_data(config: TrainConfig, ds):
    """The data a run trains on and is evaluated on, from ``data.load_dataset``'s ``ds``.

    ``ds`` itself for the Bernoulli models; for the 8-bit model (likelihood
    "discretized_logistic") MNIST's pixel levels 0..255 [N, 784] in every split, never
    binarized (:func:`iwae_lib.quantized.level_splits`).
    """
    return quantized.level_splits(ds) if config.likelihood == quantized.LIKELIHOOD else ds


def save_test_log_likelihoods(out, log_likelihoods, k: int, seed: int):
    """Write the per-image test log-likelihood estimates [N] of the final evaluation (k samples, seed)."""
    checkpoints.save_arrays(Path(out) / TEST_LL_FILE, {"log_likelihood": np.asarray(log_likelihoods, np.float64),
                                                       "k": np.asarray(k, np.int64), "seed": np.asarray(seed, np.int64)})


def finish(config: TrainConfig, out: Path, weights: dict, counters: dict, ds, progress: bool = True) -> dict:
    """Final evaluation of the selected weights; writes weights.npz and metrics.json.

    ``ds`` is :func:`prepare_data`'s. The 8-bit model's log-likelihoods are of its pixel
    levels, and are also given in bits per pixel (``test_bits_per_dim`` etc.).
    """
    model = config.model_config()
    started = time.monotonic()
    test_x = ds.test if config.final_test_size is None else ds.test[: config.final_test_size]
    test_ll = evaluation.log_likelihood(weights, model, test_x, k=config.final_k, seed=config.seed + EVAL_SEED_OFFSETS["test"],
                                        progress=progress, description=f"test log p(x), k={config.final_k}")
    train_x = ds.train[: config.final_train_size]
    if ds.dynamic:
        train_x = data.binarize(train_x, TRAIN_EVAL_BINARIZATION_SEED)
    train_ll = evaluation.log_likelihood(weights, model, train_x, k=config.final_k, seed=config.seed + EVAL_SEED_OFFSETS["train"],
                                         progress=progress, description=f"train log p(x), k={config.final_k}")
    valid_ll = None
    if ds.valid is not None:  # the number that recipes are compared on (never the test set's)
        valid_ll = evaluation.log_likelihood(weights, model, ds.valid, k=config.final_k,
                                             seed=config.seed + EVAL_SEED_OFFSETS["valid"], progress=progress,
                                             description=f"validation log p(x), k={config.final_k}")
    units = evaluation.active_units(weights, model, ds.test, seed=config.seed + EVAL_SEED_OFFSETS["active_units"])
    checkpoints.save_arrays(out / WEIGHTS_FILE, weights)
    save_test_log_likelihoods(out, test_ll, config.final_k, config.seed + EVAL_SEED_OFFSETS["test"])
    metrics = {
        "finished": True,
        "config": config.to_dict(),
        "model": model.to_dict(),
        "seed": config.seed,
        "epochs_completed": counters["epoch"],
        "total_epochs": config.total_epochs(),
        "global_steps": counters["global_step"],
        "stopped_early": counters["stopped_early"],
        "selected_epoch": counters["best"]["epoch"] if counters["best"] else counters["epoch"],
        "weights_kind": ("validation-selected " if counters["best"] else "final ")
                        + ("moving average" if config.ema_decay > 0 else "parameters"),
        "test_log_likelihood": float(np.mean(test_ll)),
        "test_log_likelihood_stderr": float(np.std(test_ll) / math.sqrt(len(test_ll))),
        "test_images": len(test_ll),
        "valid_log_likelihood": None if valid_ll is None else float(np.mean(valid_ll)),
        "valid_log_likelihood_stderr": None if valid_ll is None else float(np.std(valid_ll) / math.sqrt(len(valid_ll))),
        "valid_images": 0 if valid_ll is None else len(valid_ll),
        "train_log_likelihood": float(np.mean(train_ll)),
        "train_images": len(train_ll),
        "final_k": config.final_k,
        "active_units": units["active"],
        "active_unit_variances": [v.tolist() for v in units["variances"]],
        "history": counters["history"],
        "wall_seconds": {"training": counters["train_seconds"],
                         "per_stage": counters["stage_seconds"],
                         "final_evaluation": time.monotonic() - started},
        "environment": runinfo.environment(),  # of this final evaluation
        "training_sessions": counters.get("sessions", []),  # each start or resume of training
        "weights": WEIGHTS_FILE,
    }
    if model.likelihood == quantized.LIKELIHOOD:  # discrete 8-bit images: also in bits per pixel
        for split, ll in (("test", test_ll), ("valid", valid_ll), ("train", train_ll)):
            if ll is not None:
                metrics[f"{split}_bits_per_dim"] = quantized.bits_per_dim(ll, model.x_size)
    checkpoints.save_json(out / METRICS_FILE, metrics)
    return metrics
