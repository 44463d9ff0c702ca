"""How long a run takes here: the seconds per epoch measured here for the same step shape.

Two runs of one step shape (:func:`step_shape`: the model's sizes, k, the batch size, the
objective, estimator, likelihood and precision) do the same work per step. A run's time
left is its epochs left times the seconds per epoch of a recorded run of its shape: its
own (an unfinished run's ``progress.json``), else the fastest run in ``results/`` trained on
this machine (same processor and core count), scaled to the run's steps per epoch. Each
run counts at its pace (:func:`epoch_pace`), so epochs slowed by other work on the machine
do not count. Evaluations are not counted; a shape never recorded here has no estimate.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from iwae_lib import checkpoints
from iwae_lib.config import TrainConfig

TRAIN_IMAGES = {"mnist": 60000, "binarized_mnist": 50000, "omniglot": 24345}
CHECKPOINT_NAME = "checkpoint.npz"  # = iwae_lib.run_dir.CHECKPOINT_FILE (a test checks), read without importing TF
DYNAMIC = {"mnist": True, "binarized_mnist": False, "omniglot": True}  # validation images leave the training set


def step_kind(config: TrainConfig) -> str:
    """What a step computes: "objective/estimator/likelihood" (PIWAE with its encoder's
    bound: "piwae-miwae/standard/bernoulli")."""
    objective = f"piwae-{config.piwae_encoder}" if config.objective == "piwae" else config.objective
    return f"{objective}/{config.estimator}/{config.likelihood}"


def step_shape(config: TrainConfig) -> tuple:
    """What one training step's time depends on."""
    return config.model_config(), config.k, config.batch_size, step_kind(config), config.precision


def steps_per_epoch(config: TrainConfig) -> int:
    images = config.train_size if config.train_size is not None else TRAIN_IMAGES[config.dataset]
    if config.train_size is None and DYNAMIC[config.dataset]:
        images -= config.validation_size
    return images // config.batch_size


def epoch_durations(history) -> list:
    """Seconds of each epoch of a learning curve (records with the cumulative ``train_seconds``)."""
    seconds = [0.0] + [record.get("train_seconds") or 0.0 for record in history]
    return [b - a for a, b in zip(seconds[:-1], seconds[1:])]


def epoch_pace(history) -> float | None:
    """Seconds per epoch at the pace of the faster epochs: the lower quartile of the epoch
    times (epochs slowed by other work sharing the machine sit above it), or None."""
    durations = [d for d in epoch_durations(history) if d > 0]
    return float(np.percentile(durations, 25)) if durations else None


def this_machine() -> dict:
    from iwae_lib.runinfo import cpu_model

    return {"cpu": cpu_model(), "cpu_count": os.cpu_count()}


def durations_here(metrics: dict, machine: dict) -> list:
    """The epoch times of a recorded run (``metrics.json``) that sessions on ``machine`` trained."""
    durations = epoch_durations(metrics.get("history") or [])
    here = lambda env: all((env or {}).get(key) == value for key, value in machine.items())  # noqa: E731
    sessions = metrics.get("training_sessions")
    if not sessions:  # only the environment of the last session is known
        return durations if here(metrics.get("environment")) else []
    starts = [s["from_epoch"] for s in sessions] + [len(durations)]
    return [d for s, a, b in zip(sessions, starts, starts[1:]) if here(s.get("environment")) for d in durations[a:b]]


@dataclasses.dataclass(frozen=True)
class Paces:
    """step shape -> seconds per step measured on ``machine`` (the fastest run of the shape)."""

    step_seconds: dict
    machine: dict

    def epoch_seconds(self, config: TrainConfig) -> float | None:
        step = self.step_seconds.get(step_shape(config))
        return step * steps_per_epoch(config) if step else None

    @property
    def basis(self) -> str:
        """The one line that says where the estimates come from."""
        return (f"time left = epochs left x seconds per epoch measured here ({self.machine['cpu']}, "
                f"{self.machine['cpu_count']} cores) by a run of the same step shape (model, k, batch, "
                "objective, estimator, likelihood); evaluations not counted; '?': no such run recorded here")


def unfinished_metrics(run_dir: Path) -> dict | None:
    """What :func:`measured` reads of a run still in training, from its checkpoint's counters
    (its learning curve so far and its training sessions, with their machines): a dict like a
    ``metrics.json``'s ``config``, ``history`` and ``training_sessions``; None without a
    readable checkpoint and ``config.json``."""
    counters = checkpoints.read_counters(Path(run_dir) / CHECKPOINT_NAME)
    try:
        config = json.loads((Path(run_dir) / "config.json").read_text())["train"]
    except (OSError, KeyError, ValueError):
        return None
    if counters is None:
        return None
    return {"config": config, "history": counters.get("history") or [],
            "training_sessions": counters.get("sessions") or []}


def measured(results_dir, machine: dict | None = None) -> Paces:
    """The paces of the runs in ``results_dir`` on ``machine`` (default: this one): recorded
    runs (snapshot segments included) and runs still in training (their checkpoints)."""
    machine = machine or this_machine()
    fastest = {}
    results = Path(results_dir)
    recorded = sorted([*results.glob("*/metrics.json"), *results.glob("*/epoch_*/metrics.json")])
    training = sorted(path.parent for path in results.glob(f"*/{CHECKPOINT_NAME}")
                      if not (path.parent / "metrics.json").exists())
    for path in recorded + training:
        try:
            metrics = json.loads(path.read_text()) if path.name == "metrics.json" else unfinished_metrics(path)
            config = TrainConfig.from_dict(metrics["config"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        durations = [d for d in durations_here(metrics, machine) if d > 0]
        if durations:
            step = float(np.percentile(durations, 25)) / steps_per_epoch(config)
            shape = step_shape(config)
            fastest[shape] = min(step, fastest.get(shape, step))
    return Paces(fastest, machine)


def run_seconds(config: TrainConfig, paces: Paces, epochs_done: int = 0,
                own_epoch_seconds: float | None = None) -> float | None:
    """Seconds to train the epochs left (the run's own seconds per epoch when given), or None."""
    epoch = own_epoch_seconds or paces.epoch_seconds(config)
    return max(0, config.total_epochs() - epochs_done) * epoch if epoch else None


def format_hours(seconds: float | None) -> str:
    """``"3.2 h"``, ``"12 min"``, ``"<1 min"``, or ``"?"`` when there is no estimate."""
    if seconds is None:
        return "?"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else "<1 min"
