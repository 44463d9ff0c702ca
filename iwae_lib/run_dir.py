"""A run directory: its files, checkpoints, the stop signals, the session log and the final record.

A run lives in one directory:

    config.json      the TrainConfig (and the model architecture it implies)
    checkpoint.npz   parameters, Adam state, counters and history; rewritten atomically
    progress.json    the learning curve so far (readable while a run is going on)
    metrics.json     final results: k=5000 test log-likelihood, train log-likelihood,
                     active units, per-epoch history, wall times, environment
    weights.npz      the final (or validation-selected) parameters, float32 arrays
    test_log_likelihoods.npz   the final per-image test estimates
    tensorboard/     TensorBoard scalars: bounds, learning rate, active units per layer
    train.lock       held by the process training the run (:func:`checkpoints.exclusive_run`)

:mod:`iwae_lib.training` trains; this module is everything around it that a run directory
needs: the files' names, writing and reading checkpoints, the signals that stop a run at a
checkpoint, the log of training sessions, and the final evaluation written as the record.
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

from iwae_lib import checkpoints, data, evaluation, likelihoods, runinfo
from iwae_lib.config import TrainConfig, config_differences

CONFIG_FILE, CHECKPOINT_FILE, PROGRESS_FILE = "config.json", "checkpoint.npz", "progress.json"
METRICS_FILE, WEIGHTS_FILE = "metrics.json", "weights.npz"
# Per-image estimates of the final test log-likelihood ("log_likelihood" [N] float64, with
# "k" and "seed"): a recorded mean can then be checked image by image (tests/runs/test_recorded_results.py).
TEST_LL_FILE = "test_log_likelihoods.npz"
VALID_LL_FILE = "valid_log_likelihoods.npz"  # runs with a validation split: recipes are compared on it
# Seeds of the evaluations, as offsets from the run's seed: held-out monitoring during
# training ("valid", on test images too), the final test and train estimates, active units.
EVAL_SEED_OFFSETS = {"valid": 1, "test": 2, "train": 3, "active_units": 4}
TRAIN_EVAL_BINARIZATION_SEED = 20151103  # fixed binarization of the training images scored at the end


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


# ----------------------------------------------------------------------------- checkpoints


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


def checkpoint_position(run_dir) -> dict | None:
    """Where a run's checkpoint stands: {"epoch", "step_in_epoch", "global_step"}, or None
    when it is missing or damaged (read without loading the arrays)."""
    counters = checkpoints.read_counters(Path(run_dir) / CHECKPOINT_FILE)
    if counters is None:
        return None
    return {key: counters.get(key) for key in ("epoch", "step_in_epoch", "global_step")}


def write_progress(out: Path, counters: dict, total_epochs: int):
    """progress.json: the learning curve so far, readable while the run goes on."""
    checkpoints.save_json(Path(out) / PROGRESS_FILE, {"epochs_completed": counters["epoch"],
                                                      "total_epochs": total_epochs, "history": counters["history"]})


def log_session(counters: dict, total_epochs: int):
    """Append this start (or resume) of training, with the code and machine, to the counters."""
    if counters["epoch"] < total_epochs:
        counters.setdefault("sessions", []).append(
            {"from_epoch": counters["epoch"], "from_step": counters["global_step"], "environment": runinfo.environment()})


# ----------------------------------------------------------------------------- signals


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


# ----------------------------------------------------------------------------- the record


def save_log_likelihoods(out, log_likelihoods, k: int, seed: int, file: str = TEST_LL_FILE):
    """Write the per-image log-likelihood estimates [N] of the final evaluation (k samples,
    seed) into ``out/file``: the test images' (default) or, with ``VALID_LL_FILE``, the
    validation images'."""
    checkpoints.save_arrays(Path(out) / file, {"log_likelihood": np.asarray(log_likelihoods, np.float64),
                                               "k": np.asarray(k, np.int64), "seed": np.asarray(seed, np.int64)})


def finish(config: TrainConfig, out: Path, weights: dict, counters: dict, ds, progress: bool = True) -> dict:
    """Final evaluation of the selected weights; writes weights.npz and metrics.json.

    ``ds`` is :func:`iwae_lib.training.prepare_data`'s. The likelihood may add entries: the
    8-bit model's log-likelihoods are of its pixel levels, also given in bits per pixel
    (``test_bits_per_dim`` etc.).
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
    save_log_likelihoods(out, test_ll, config.final_k, config.seed + EVAL_SEED_OFFSETS["test"])
    if valid_ll is not None:  # paired comparisons of recipes, image by image, on validation images
        save_log_likelihoods(out, valid_ll, config.final_k, config.seed + EVAL_SEED_OFFSETS["valid"],
                                  file=VALID_LL_FILE)
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
    for split, ll in (("test", test_ll), ("valid", valid_ll), ("train", train_ll)):
        metrics.update(likelihoods.get(model.likelihood).report(split, ll, model.x_size))  # 8-bit: bits per pixel
    checkpoints.save_json(out / METRICS_FILE, metrics)
    return metrics
