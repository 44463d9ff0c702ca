"""Where each of the book's runs stands in ``results/``, what is left, and how to record it.

    statuses(runs, results_dir, paces) -> [RunStatus]  one per catalog entry, in catalog order
    check_message(statuses, paces)     -> str | None   the build's refusal, or None when all are recorded
    training_notice(name, config, out, results_dir)   what a notebook says before it trains a run

A run is ``recorded`` (finished, with the catalog's configuration), ``unfinished`` (started
here with that configuration: epochs done of total, resumable), ``missing``, or
``different`` (its folder holds a run of another configuration: it must be moved away).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

from iwae_lib import checkpoints
from iwae_lib.chapters.catalog import BookRun, segment_name
from iwae_lib.bookkeeping import pace
from iwae_lib.config import config_differences, config_flags

SMOKE_BUILD = "IWAE_SMOKE=1 bash scripts/build_book.sh"


@dataclasses.dataclass(frozen=True)
class RunStatus:
    """state: recorded / unfinished / missing / different; epochs_done of total_epochs;
    seconds: estimated seconds of training left here (None: no estimate); command: the one command that records it
    (empty when recorded); detail: why a run is ``different``; trainer: the pid of the
    process training it at this moment, if any (:func:`iwae_lib.checkpoints.training_process`)."""

    run: BookRun
    state: str
    epochs_done: int
    total_epochs: int
    seconds: float | None
    command: str
    detail: str = ""
    trainer: str = ""  # pid of the process training the run now ("" when none)

    @property
    def ready(self) -> bool:
        return self.state == "recorded"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def checkpoint_epochs(run_dir: Path) -> int:
    """Completed epochs in a run folder's checkpoint (0 when there is none)."""
    from iwae_lib.run_dir import checkpoint_position

    position = checkpoint_position(run_dir)
    return int(position["epoch"]) if position else 0


def folder_state(run_dir: Path, config) -> tuple:
    """(state, epochs done, differing options, measured seconds per epoch or None) of one run folder."""
    metrics = _read(run_dir / "metrics.json")
    stored = metrics.get("config") if metrics else (_read(run_dir / "config.json") or {}).get("train")
    if stored is None:
        return "missing", 0, [], None
    differing = config_differences(stored, config.to_dict())
    if differing:
        return "different", 0, differing, None
    if metrics:
        return "recorded", config.total_epochs(), [], None
    done = checkpoint_epochs(run_dir)
    history = (_read(run_dir / "progress.json") or {}).get("history") or []
    return "unfinished", done, [], pace.epoch_pace(history[:done]) if done else None


def train_command(name: str, config, results_root: str = "results", resume: bool = False) -> str:
    """``python -m iwae_lib train --out results/NAME <flags of config>`` (+ ``--resume``)."""
    words = ["python", "-m", "iwae_lib", "train", "--out", f"{results_root}/{name}", *config_flags(config)]
    return shlex.join(words + (["--resume"] if resume else []))


def record_command(name: str) -> str:
    return shlex.join(["python", "-m", "iwae_lib", "record", name])


def status(run: BookRun, results_dir, paces: pace.Paces) -> RunStatus:
    """The RunStatus of one catalog run in ``results_dir``, with the process training it now."""
    folder = Path(results_dir) / run.name
    found = _status(run, folder, paces)
    if found.ready:
        return found
    folders = [folder]
    if run.kind == "snapshots":
        folders += [folder / segment_name(e) for e in run.snapshot_epochs]
    trainers = [pid for pid in map(checkpoints.training_process, folders) if pid]
    return dataclasses.replace(found, trainer=trainers[0]) if trainers else found


def _status(run: BookRun, folder: Path, paces: pace.Paces) -> RunStatus:
    """The RunStatus of one catalog run from what its folder holds."""
    total = run.total_epochs
    if run.kind == "snapshots":
        states = [folder_state(folder / segment_name(e), dataclasses.replace(run.config, epochs=e))
                  for e in run.snapshot_epochs]
        different = [s for s in states if s[0] == "different"]
        if different:
            return RunStatus(run, "different", 0, total, 0.0, "", f"a snapshot differs in: {', '.join(different[0][2])}")
        finished = [e for e, s in zip(run.snapshot_epochs, states) if s[0] == "recorded"]
        done = max([finished[-1] if finished else 0] + [s[1] for s in states if s[0] == "unfinished"])
        if len(finished) == len(run.snapshot_epochs):
            return RunStatus(run, "recorded", total, total, 0.0, "")
        return RunStatus(run, "unfinished" if done or finished else "missing", done, total,
                         pace.run_seconds(run.config, paces, done),
                         record_command(run.name))
    state, done, differing, per_epoch = folder_state(folder, run.config)
    if state == "recorded":
        return RunStatus(run, state, total, total, 0.0, "")
    if state == "different":
        return RunStatus(run, state, 0, total, 0.0, "", f"{folder} holds a run that differs in: {', '.join(differing)}")
    seconds = pace.run_seconds(run.config, paces, done, per_epoch)
    return RunStatus(run, state, done, total, seconds,
                     train_command(run.name, run.config, resume=state == "unfinished"))


def statuses(runs: dict, results_dir, paces: pace.Paces) -> list:
    """[RunStatus] in catalog order, their time estimates from ``paces`` (:func:`pace.measured`)."""
    return [status(run, results_dir, paces) for run in runs.values()]


def state_text(s: RunStatus) -> str:
    text = f"unfinished, {s.epochs_done} of {s.total_epochs} epochs" if s.state == "unfinished" else s.state
    return f"{text}, training now (pid {s.trainer})" if s.trainer else text


def _total(rows: list) -> str:
    """The training left on this machine, one run after another: the sum of the estimates,
    and how many runs have none."""
    known = [s.seconds for s in rows if s.seconds is not None]
    unknown = len(rows) - len(known)
    runs = f"{unknown} run{'s' if unknown > 1 else ''} without an estimate"
    if not known:
        return f"training left on this machine: ? ({runs})" if unknown else "nothing left to train"
    return (f"training left on this machine, one run after another: {pace.format_hours(sum(known))}"
            + (f" + {runs}" if unknown else ""))


def table(rows: list, paces: pace.Paces) -> str:
    """A fixed-width listing: name, chapters, state, hours left, command; then the basis and totals."""
    cells = [("run", "chapters", "status", "time left", "command")]
    for s in rows:
        cells.append((s.run.name, ",".join(str(c) for c in s.run.chapters), state_text(s),
                      pace.format_hours(s.seconds) if not s.ready else "-",
                      s.command or (s.detail and f"({s.detail})") or ""))
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in cells]
    todo = [s for s in rows if not s.ready]
    lines += ["", f"{len(rows) - len(todo)} of {len(rows)} runs recorded; {_total(todo)}",
              f"estimates: {paces.basis}"]
    return "\n".join(lines)


def check_message(rows: list, paces: pace.Paces) -> str | None:
    """None when every run is recorded; else the full build's refusal: which runs, the
    commands that record them, the estimated hours, and the smoke build."""
    todo = [s for s in rows if not s.ready]
    if not todo:
        return None
    lines = [f"The full book shows {len(rows)} recorded runs; {len(todo)} are not recorded in results/ yet, and "
             "the book build never trains. Record them first (each command is independent and resumable; "
             "hand them to GNU parallel or a batch scheduler with `python -m iwae_lib runs --missing-commands`):", ""]
    for s in todo:
        what = s.detail if s.state == "different" else f"{state_text(s)}, about {pace.format_hours(s.seconds)}"
        lines.append(f"  {s.run.name} ({what})")
        if s.command:
            lines.append(f"    {s.command}")
    lines += ["", f"In all, {_total(todo)}.",
              f"Estimates: {paces.basis}.",
              f"For a quick build in which every chapter trains tiny models in seconds: {SMOKE_BUILD}"]
    return "\n".join(lines)


def training_notice(name: str, config, out: Path, results_dir) -> str:
    """What a notebook says before it trains a run that is not recorded in ``results_dir``:
    how long it will take here (:mod:`iwae_lib.bookkeeping.pace`) and the command that
    records it instead."""
    paces = pace.measured(results_dir)
    state, done, _, per_epoch = folder_state(Path(out), config)
    resumes = state == "unfinished"
    seconds = pace.run_seconds(config, paces, done if resumes else 0, per_epoch)
    start = f"from epoch {done} " if resumes and done else ""
    return (f"{name} is not recorded in results/: training it now {start}into {out}, about "
            f"{pace.format_hours(seconds)} on this machine ({paces.basis}). "
            f"To record it outside the notebook instead: "
            f"{train_command(name, config, resume=resumes and Path(out).parent == Path(results_dir))}")
