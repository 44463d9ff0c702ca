"""A small training loop for models and gradients outside ``TrainConfig``, and its records.

:func:`iwae_lib.training.train` covers the library's objectives and estimators. Two
experiments of the book need something else: PIWAE (a different bound for each network,
:func:`iwae_lib.book.gradient_stats.piwae_gradient_fn`) and the quantized likelihood for
8-bit pixels (:mod:`iwae_lib.quantized`). Both only need a *gradient function*
``(params, x, seed) -> (bound [B], grads)``, so one loop serves them:

    fit(params, gradient_fn, train_x, epochs, ...)      Adam, constant rate, shuffled batches

The steps are :func:`iwae_lib.training.compile_train_chunk`, the same compiled Adam
steps as the main training loop, so randomness is the same pure function of (seed, step).
There is no checkpointing: these runs are meant to be short.

:func:`fit_or_load` records a finished run as ``<root>/<name>/{settings.json, metrics.json,
weights.npz}``, with the same roots as :func:`iwae_lib.book.train_or_load`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from iwae_lib import adam, book, checkpoints, models, runinfo, training
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()


def fit(params: dict, gradient_fn, train_x, epochs: int, batch_size: int = 20, learning_rate: float = 1e-3,
        seed: int = 0, prepare_batch=None, steps_per_call: int = 50, progress: bool = False):
    """Train ``params`` with Adam (the paper's beta1, beta2, epsilon) at a constant rate.

    Args:
        params: initial parameter dict (NumPy arrays); not modified.
        gradient_fn: ``(variables, x [B, D], seed [2]) -> (bound [B], grads dict)``.
        train_x: [N, D] training data as the model wants it (or as ``prepare_batch`` wants it).
        epochs, batch_size, learning_rate, seed: as in TrainConfig.
        prepare_batch: optional ``(x, seed [2]) -> x`` applied to each batch in the compiled
            step, e.g. :func:`iwae_lib.training.binarize_batch`; its seed is (seed, step) folded with 0.

    Returns:
        (trained parameters as float32 NumPy arrays, history: list of
        {"epoch", "train_bound", "train_seconds"} per epoch).
    """
    train_x = np.asarray(train_x, np.float32)
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs}")
    if train_x.ndim != 2 or len(train_x) < batch_size:
        raise ValueError(f"train_x must be [N, D] with N >= batch_size ({batch_size}), got {train_x.shape}")
    variables = models.as_variables(models.to_numpy(params))
    m, v = adam.zeros_like_params(variables), adam.zeros_like_params(variables)
    train_chunk = training.compile_train_chunk(variables, m, v, gradient_fn, seed, batch_size, train_x.shape[1],
                                               prepare_batch)
    rate = tf.constant(learning_rate, tf.float32)

    history, step, seconds = [], 0, 0.0
    for epoch in tqdm(range(int(epochs)), desc="epochs", unit="epoch", disable=not progress):
        started = time.monotonic()
        order = training.epoch_order(seed, epoch, len(train_x), batch_size)
        bound_sum = 0.0
        for first in range(0, len(order), steps_per_call):
            idx = order[first:first + steps_per_call]
            bound_sum += float(train_chunk(train_x[idx], rate, tf.constant(step, tf.int64))) * len(idx)
            step += len(idx)
        if not np.isfinite(bound_sum):
            raise FloatingPointError(f"the training bound became {bound_sum} in epoch {epoch + 1}; "
                                     "try a smaller learning rate")
        seconds += time.monotonic() - started
        history.append({"epoch": epoch + 1, "train_bound": bound_sum / len(order), "train_seconds": seconds})
    return models.to_numpy(variables), history


def fit_or_load(name: str, settings: dict, run, smoke: bool | None = None) -> dict:
    """A finished custom run: loaded if recorded with the same settings, else run now.

    Args:
        name: run name (folder under ``results/``, ``runs/`` or ``runs/smoke/``).
        settings: JSON-friendly dict of everything that defines the run.
        run: ``() -> (weights dict, metrics dict)``, called only when training is needed.

    Returns:
        {"name", "settings", "weights", "metrics", "source", "run_dir"}.
    """
    smoke = book.is_smoke() if smoke is None else smoke
    settings = json.loads(json.dumps(settings))  # normalise tuples to lists, as stored
    recorded = book.results_dir() / name
    if not smoke and (recorded / "metrics.json").is_file():
        stored = checkpoints.load_json(recorded / "settings.json")
        if stored != settings:
            differing = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
            raise ValueError(f"results/{name} was recorded with other settings (differs in: {', '.join(differing)}); "
                             "use the recorded settings, another name, or delete that folder")
        return _record(name, recorded, "recorded")
    out = book.smoke_dir(name) if smoke else book.runs_dir() / name
    if smoke:
        shutil.rmtree(out, ignore_errors=True)
    if not (out / "metrics.json").is_file():
        weights, metrics = run()
        out.mkdir(parents=True, exist_ok=True)
        checkpoints.save_json(out / "settings.json", settings)
        checkpoints.save_arrays(out / "weights.npz", weights)
        checkpoints.save_json(out / "metrics.json", {**metrics, "environment": runinfo.environment()})
    return _record(name, out, "trained now")


def _record(name: str, folder: Path, source: str) -> dict:
    return {"name": name, "settings": checkpoints.load_json(folder / "settings.json"),
            "weights": checkpoints.load_arrays(folder / "weights.npz"),
            "metrics": checkpoints.load_json(folder / "metrics.json"), "source": source, "run_dir": folder}
