"""Training: the compiled Adam steps, the weights' moving average, the epoch order, and a
loop over epochs that checkpoints, evaluates on held-out images and stops early.

Randomness is a pure function of (seed, step): the data order of epoch e is a permutation
drawn from ``default_rng([seed, e])``, and the Bernoulli binarization and the samples of
step s use stateless TF seeds derived from (seed, s). A run resumed from a checkpoint
therefore does exactly what the uninterrupted run would have done.

Ctrl-C (SIGINT) or SIGTERM during training finishes the compiled call under way, writes a
checkpoint there and raises KeyboardInterrupt, so an interrupted run loses no step; a
second signal stops at once, from the last checkpoint. The run directory's files, the
checkpoints and the final record are :mod:`iwae_lib.run_dir`'s.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from iwae_lib import adam, checkpoints, data, estimators, evaluation, likelihoods, models, run_dir, schedules
from iwae_lib._quiet import import_tensorflow_quietly
from iwae_lib.config import TrainConfig
from iwae_lib.run_dir import CHECKPOINT_FILE, EVAL_SEED_OFFSETS, METRICS_FILE, load_checkpoint, prepare_run_dir

tf = import_tensorflow_quietly()


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


def _as_arrays(variables: dict) -> dict:
    """name -> NumPy array of a dict of tf.Variable."""
    return {n: var.numpy() for n, var in variables.items()}


@dataclasses.dataclass
class TrainingState:
    """What a checkpoint holds, as the loop uses it: tf.Variable dicts of the parameters,
    Adam's moments and the moving average (None without one), the validation-selected
    weights (NumPy, or None) and the counters (epoch, step, history, timings, ...)."""

    params: dict
    m: dict
    v: dict
    ema: dict | None
    best: dict | None
    counters: dict

    def weights(self) -> dict:
        """The weights that are evaluated and kept: the moving average when there is one."""
        return _as_arrays(self.ema or self.params)


def load_state(config: TrainConfig, model, checkpoint_path: Path, train_mean) -> TrainingState:
    """The checkpoint's state if there is one, else a fresh start."""
    if checkpoint_path.exists():
        params_np, m_np, v_np, best, counters, ema_np = load_checkpoint(checkpoint_path)
    else:
        params_np, m_np, v_np, best, counters, ema_np = _fresh_state(config, model, train_mean)
    if config.ema_decay > 0 and ema_np is None:
        ema_np = {n: np.array(p, copy=True) for n, p in params_np.items()}  # the average starts at the initial weights
    ema = models.as_variables(ema_np) if config.ema_decay > 0 else None
    return TrainingState(models.as_variables(params_np), models.as_variables(m_np), models.as_variables(v_np),
                         ema, best, counters)


class Checkpointer:
    """Writes the state to checkpoint.npz and progress.json, and says when a timed one is due."""

    def __init__(self, out: Path, state: TrainingState, total_epochs: int, every_seconds: float):
        self.out, self.state, self.total_epochs, self.every_seconds = out, state, total_epochs, every_seconds
        self.last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every_seconds

    def save(self):
        s = self.state
        run_dir.save_checkpoint(self.out / CHECKPOINT_FILE, _as_arrays(s.params), _as_arrays(s.m), _as_arrays(s.v),
                                s.best, s.counters, _as_arrays(s.ema) if s.ema is not None else None)
        run_dir.write_progress(self.out, s.counters, self.total_epochs)
        self.last = time.monotonic()


def monitor_rows(num_images, eval_size):
    """Rows [min(eval_size, num_images)] of the test images whose bound is tracked during
    training: spread evenly over the file, not its first rows. Larochelle's binarized MNIST
    test file is sorted by digit class, so its first 2000 images are mostly zeros and ones,
    whose k=5 bound lies some 14 nats above that of the whole file."""
    if eval_size >= num_images:
        return np.arange(num_images)
    return np.floor(np.arange(eval_size) * (num_images / eval_size)).astype(np.int64)


def heldout_bound(params, model, x, k, seed):
    """Mean k-sample bound over the images x [N, x_size] (a float)."""
    chunk = min(k, 1000)
    return float(np.mean(evaluation.log_likelihood(params, model, x, k=k, seed=seed, chunk_size=chunk,
                                                   batch_size=max(1, 20000 // chunk), progress=False)))


def monitor_bound(weights, config: TrainConfig, x):
    """The bound a run's learning curve tracks, for ``weights`` on the images x [N, x_size]:
    L_k with k = ``eval_k`` (default: the training k) and the monitoring seed. Recomputing a
    curve's point from a run's weights needs exactly this."""
    return heldout_bound(weights, config.model_config(), x, config.eval_k or config.k,
                         config.seed + EVAL_SEED_OFFSETS["valid"])


def prepare_data(config: TrainConfig, ds):
    """The data a run trains on and is evaluated on, from ``data.load_dataset``'s ``ds``, as
    its likelihood reads them (:attr:`iwae_lib.likelihoods.Likelihood.data`): ``ds`` itself
    for the Bernoulli, MNIST's pixel levels 0..255 for the discretized logistic."""
    return likelihoods.get(config.likelihood).data(ds)


# ----------------------------------------------------------------------------- training


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
    state = load_state(config, model, out / CHECKPOINT_FILE, ds.train_mean)
    counters = state.counters
    run_dir.log_session(counters, len(rates))
    train_chunk = make_train_chunk(state.params, state.m, state.v, config, ds.dynamic, state.ema)
    writer = tf.summary.create_file_writer(str(out / "tensorboard"))
    monitor = {"test": ds.test[monitor_rows(len(ds.test), config.eval_size)]}
    if ds.valid is not None:
        monitor["valid"] = ds.valid[: config.eval_size]
    saver = Checkpointer(out, state, len(rates), config.checkpoint_seconds)
    bar = tqdm(total=len(rates), initial=counters["epoch"], desc="epochs", unit="epoch", disable=not progress)
    with run_dir.stop_requests() as stop:
        while counters["epoch"] < len(rates) and not counters["stopped_early"]:
            epoch = counters["epoch"]
            rate, stage = rates[epoch]

            def rate_at(position, rate=rate):
                return schedules.rate_at(config.schedule, rate, position, len(rates), config.warmup_epochs)

            train_epoch(config, state, train_chunk, train_x, epoch, stage, rate_at, saver, stop, bar)
            entry = {"epoch": epoch + 1, "stage": stage, "learning_rate": rate_at(epoch + 0.5),
                     "train_bound": counters["epoch_bound_sum"] / max(1, counters["epoch_steps"]),
                     "train_seconds": counters["train_seconds"]}
            if config.eval_every and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == len(rates)):
                evaluate_held_out(config, model, state, monitor, entry)
            log_scalars(writer, entry)
            counters["history"].append(entry)
            counters.update(epoch=epoch + 1, step_in_epoch=0, epoch_bound_sum=0.0, epoch_steps=0)
            bar.update(1)
            if (epoch + 1) in stage_ends or counters["epoch"] == len(rates) or counters["stopped_early"] \
                    or saver.due() or stop:
                saver.save()
            if stop:  # arrived during the epoch's last call or its evaluation: checkpointed just above
                raise KeyboardInterrupt(f"signal {stop['signal']}: checkpoint written")
    bar.close()
    writer.flush()
    return run_dir.finish(config, out, state.best if state.best is not None else state.weights(), counters, ds, progress)


def _count_time(counters: dict, since: float, stage: int) -> float:
    """Add the seconds since ``since`` to the training time (in all and of ``stage``); returns now."""
    now = time.monotonic()
    counters["train_seconds"] += now - since
    counters["stage_seconds"][str(stage)] = counters["stage_seconds"].get(str(stage), 0.0) + (now - since)
    return now


def train_epoch(config, state: TrainingState, train_chunk, train_x, epoch: int, stage: int, rate_at,
                saver: Checkpointer, stop: dict, bar):
    """The remaining steps of ``epoch``, ``config.steps_per_call`` per compiled call, each call
    at the learning rate of its middle step. Checkpoints when one is due and, on a stop
    request, at once (raising KeyboardInterrupt); raises FloatingPointError on a non-finite bound."""
    counters = state.counters
    n_batches = len(train_x) // config.batch_size
    order = epoch_order(config.seed, epoch, len(train_x), config.batch_size)
    started = time.monotonic()
    while counters["step_in_epoch"] < n_batches:
        first = counters["step_in_epoch"]
        idx = order[first: first + config.steps_per_call]
        step_rate = rate_at(epoch + (first + len(idx) / 2) / n_batches)
        mean_bound = float(train_chunk(train_x[idx], tf.constant(step_rate, tf.float32),
                                       tf.constant(counters["global_step"], tf.int64)))
        if not math.isfinite(mean_bound):
            raise FloatingPointError(f"the training bound became {mean_bound} in epoch {epoch + 1}; try a smaller "
                                     f"learning rate (last checkpoint: epoch {counters['epoch']}, "
                                     f"step {counters['step_in_epoch']})")
        counters["step_in_epoch"] += len(idx)
        counters["global_step"] += len(idx)
        counters["epoch_bound_sum"] += mean_bound * len(idx)
        counters["epoch_steps"] += len(idx)
        bar.set_postfix(stage=stage, bound=f"{counters['epoch_bound_sum'] / counters['epoch_steps']:.2f}")
        if counters["step_in_epoch"] < n_batches and (saver.due() or stop):
            started = _count_time(counters, started, stage)
            saver.save()
            if stop:  # Ctrl-C / SIGTERM: every step done is kept
                raise KeyboardInterrupt(f"signal {stop['signal']}: checkpoint written")
    _count_time(counters, started, stage)


def evaluate_held_out(config, model, state: TrainingState, monitor: dict, entry: dict):
    """Into ``entry``: the bound at ``eval_k`` (default: the training k) on each monitored set
    and the active units; with a validation set, keep the best weights and count the
    evaluations since, stopping early after ``config.patience`` of them."""
    counters, weights = state.counters, state.weights()
    for split, x in monitor.items():
        entry[f"{split}_bound"] = monitor_bound(weights, config, x)
    held_out = monitor.get("valid", monitor["test"])
    entry["active_units"] = evaluation.active_units(weights, model, held_out,
                                                   seed=config.seed + EVAL_SEED_OFFSETS["active_units"])["active"]
    if "valid" not in monitor:
        return
    if state.best is None or entry["valid_bound"] > counters["best"]["valid_bound"]:
        state.best, counters["best"] = weights, {"epoch": entry["epoch"], "valid_bound": entry["valid_bound"]}
        counters["evals_since_best"] = 0
    else:
        counters["evals_since_best"] += 1
        if config.patience is not None and counters["evals_since_best"] >= config.patience:
            counters["stopped_early"] = True


def log_scalars(writer, entry: dict):
    """TensorBoard: the epoch's bounds, learning rate and active units per layer."""
    with writer.as_default(step=entry["epoch"]):
        for key in ("train_bound", "test_bound", "valid_bound", "learning_rate"):
            if key in entry:
                tf.summary.scalar(key, entry[key])
        for layer, count in enumerate(entry.get("active_units", []), 1):
            tf.summary.scalar(f"active_units/layer{layer}", count)
