"""Where a recorded run's training hours went: one row per training session.

A long run is trained in several sessions (each start or ``--resume``), possibly on
different machines and sometimes sharing the cores with other work. ``metrics.json``
records every session's start (``training_sessions``: epoch, step, environment) and the
cumulative training seconds after every epoch (``history``). From the two, this module
splits the recorded wall time by session and gives each session's pace, so that a reader
can tell the hours a run *took* from the hours the machine *needs*.
"""

from __future__ import annotations

from iwae_lib.bookkeeping.pace import epoch_pace, steps_per_epoch
from iwae_lib.config import TrainConfig


def _spans(metrics: dict):
    """(session number, environment, first epoch index, end epoch index, seconds, pace) of
    each session that completed an epoch (see :func:`session_rows`)."""
    history = metrics["history"]
    sessions = list(metrics.get("training_sessions") or [{"from_epoch": 0, "environment": metrics.get("environment", {})}])
    if sessions[0]["from_epoch"] > 0:  # runs begun before sessions were recorded
        sessions.insert(0, {"from_epoch": 0, "environment": {"cpu": "not recorded", "git_revision": "not recorded"}})
    starts = [s["from_epoch"] for s in sessions] + [len(history)]
    for number, (session, first, end) in enumerate(zip(sessions, starts[:-1], starts[1:]), 1):
        if end <= first:
            continue
        before = history[first - 1]["train_seconds"] if first else 0.0
        seconds = history[end - 1]["train_seconds"] - before
        pace = epoch_pace([{"train_seconds": r["train_seconds"] - before} for r in history[first:end]])
        yield number, session.get("environment", {}), first, end, seconds, pace


def session_rows(metrics: dict) -> list:
    """One dict per training session of a finished run's ``metrics``.

    Keys: ``session`` (1, 2, ...), ``cpu`` and ``revision`` (from the recorded environment),
    ``speed_settings`` (the TensorFlow variables set, "" for the defaults), ``epochs``
    (``"a-b"``, the epochs the session completed), ``hours`` (training seconds of those
    epochs / 3600), ``steps/s`` (the average over the session) and ``steps/s at pace``
    (steps per epoch / the lower quartile of its epoch times, :func:`epoch_pace`).
    Epochs trained before the library recorded sessions form a first row with an unknown
    machine. A session that completed no epoch (interrupted within one) has no row of its
    own; its time counts in the next epoch that completed.
    """
    per_epoch = steps_per_epoch(TrainConfig.from_dict(metrics["config"]))
    rows = []
    for number, environment, first, end, seconds, pace in _spans(metrics):
        settings = environment.get("speed_settings") or {}
        rows.append({"session": number, "cpu": environment.get("cpu", "unknown"),
                     "revision": _short_revision(environment.get("git_revision", "unknown")),
                     "speed_settings": " ".join(f"{k}={v}" for k, v in sorted(settings.items())),
                     "epochs": f"{first + 1}-{end}", "hours": seconds / 3600,
                     "steps/s": (end - first) * per_epoch / seconds if seconds > 0 else None,
                     "steps/s at pace": per_epoch / pace if pace else None})
    return rows


def hours_at_pace(metrics: dict) -> float:
    """The training hours of the run had every session gone at its own pace: the sum over
    sessions of (epochs x the lower quartile of its epoch times) / 3600. Not a measurement
    of the run; what its sessions' machines needed when the run had them alone."""
    return sum((end - first) * pace for _, _, first, end, _, pace in _spans(metrics) if pace) / 3600


def _short_revision(revision: str) -> str:
    """``"d263f2b"`` for a 40-digit commit (``"+dirty"`` kept), other texts unchanged."""
    commit, dirty, _ = revision.partition("+dirty")
    return commit[:7] + dirty if len(commit) == 40 else revision


def session_table(metrics: dict, decimals: int = 2):
    """:func:`session_rows` as a pandas DataFrame indexed by session."""
    import pandas as pd

    return pd.DataFrame(session_rows(metrics)).set_index("session").round(decimals)
