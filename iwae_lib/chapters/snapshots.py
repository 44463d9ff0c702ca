"""Snapshots of one training run at chosen epochs, for watching a model learn.

A run with the constant learning-rate schedule is trained in segments: segment i is the
same run with an epoch budget of ``snapshot_epochs[i]``, started from the checkpoint that
segment i - 1 left behind. Because training randomness is a pure function of (seed, step)
and the constant schedule's rate does not depend on the budget, the chain of segments does
exactly what one uninterrupted run would do; each segment ends with the usual final
evaluation, so every snapshot has its ``metrics.json`` (log-likelihood, active units)
and ``weights.npz``.

Layout: ``<root>/<name>/epoch_0001/``, ``epoch_0002/``, ... each a normal run directory,
with ``<root>`` as in :func:`iwae_lib.chapters.train_or_load`: ``results/`` for recorded runs,
``runs/`` for runs trained now, ``runs/smoke/`` in the smoke profile.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from iwae_lib import chapters, training
from iwae_lib.run_dir import CHECKPOINT_FILE
from iwae_lib.chapters.catalog import segment_name  # noqa: F401  (the folder of each snapshot)
from iwae_lib.config import TrainConfig


def segment_configs(config: TrainConfig, snapshot_epochs) -> dict:
    """epoch -> the TrainConfig of the segment ending there (constant schedule, that budget).

    Raises ValueError unless the epochs are increasing positive integers and the config
    uses the constant schedule (other schedules change every epoch's rate with the budget).
    """
    epochs = [int(e) for e in snapshot_epochs]
    if not epochs or epochs[0] < 1 or any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise ValueError(f"snapshot_epochs must be increasing positive integers, got {list(snapshot_epochs)}")
    if config.schedule != "constant":
        raise ValueError(f"snapshots need schedule='constant' (got {config.schedule!r}): with another schedule "
                         "the learning rate of an epoch depends on the total number of epochs")
    return {e: dataclasses.replace(config, epochs=e) for e in epochs}


def has_recorded_snapshots(name: str, snapshot_epochs) -> bool:
    folder = chapters.results_dir() / name
    return all((folder / segment_name(e) / "metrics.json").is_file() for e in snapshot_epochs)


def train_segments(config: TrainConfig, snapshot_epochs, out_dir, dataset=None, progress: bool = False) -> Path:
    """Train the chain of segments into ``out_dir`` (resuming whatever is already there)."""
    out = Path(out_dir)
    previous = None
    for epoch, segment in segment_configs(config, snapshot_epochs).items():
        run_dir = out / segment_name(epoch)
        if previous is not None and not (run_dir / "metrics.json").exists() \
                and not (run_dir / CHECKPOINT_FILE).exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(previous / CHECKPOINT_FILE, run_dir / CHECKPOINT_FILE)
        training.train(segment, run_dir, progress=progress, dataset=dataset)
        previous = run_dir
    return out


def train_or_load_snapshots(name: str, config: TrainConfig, snapshot_epochs, smoke: bool | None = None,
                            progress: bool = False) -> dict:
    """epoch -> RunRecord of the snapshot after that many epochs (ordered by epoch).

    Full profile: recorded snapshots in ``results/<name>/`` are loaded; otherwise the chain
    is trained (or resumed) in ``runs/<name>/``. Smoke profile: trained afresh in
    ``runs/smoke/<name>/``.
    """
    smoke = chapters.is_smoke() if smoke is None else smoke
    configs = segment_configs(config, snapshot_epochs)
    if not smoke and has_recorded_snapshots(name, configs):
        root, source = chapters.results_dir() / name, "recorded"
    else:
        root, source = (chapters.smoke_dir(name) if smoke else chapters.runs_dir() / name), "trained now"
        if smoke:
            shutil.rmtree(root, ignore_errors=True)
        train_segments(config, configs, root, chapters.dataset(config.dataset, config.validation_size, config.seed),
                       progress)
    return {e: chapters.load_run(segment_name(e), root, requested=c, source=source) for e, c in configs.items()}


def book_snapshot_setup(objective: str = "iwae", k: int = 5, smoke: bool | None = None):
    """The book's snapshot runs (chapters 4 and 8 share them): (run name, TrainConfig, epochs).

    Full profile: the catalog's chain (:func:`iwae_lib.chapters.catalog.snapshot_config`): the
    paper's model with one stochastic layer on dynamically binarized MNIST, Adam at a
    constant rate of 1e-3, snapshots after 1, 2, 4, ..., 64 epochs. Smoke: the same on a
    100-image subset, snapshots after 1 and 2 epochs, small final evaluations.
    """
    from iwae_lib.chapters import catalog

    smoke = chapters.is_smoke() if smoke is None else smoke
    epochs = (1, 2) if smoke else catalog.SNAPSHOT_EPOCHS
    config = catalog.snapshot_config(objective, k)
    if smoke:
        config = dataclasses.replace(config, epochs=max(epochs), train_size=100, final_k=50, final_test_size=50,
                                     final_train_size=100)
    return catalog.snapshot_run_name(objective, k), config, epochs
