"""The back matter's page "How the runs were made" (``book/runs.md``): how each run was made.

The chapters print one line naming the runs they show (:func:`iwae_lib.chapters.runs_note`);
everything else about a run lives here, written from ``results/<name>/metrics.json`` and
the book's catalog (:func:`iwae_lib.chapters.catalog.shown_runs`), never by hand:

* :func:`book_block`: the table of every catalog run (chapters, recipe, epochs, selected
  epoch, training hours, training sessions, hardware, the git revision it was recorded
  with) and the command that records each. ``python -m iwae_lib.chapters.tables --write``
  writes it into ``book/_generated/runs.md`` and a test checks that it is current. It
  changes only when a record in ``results/`` does.
* :func:`in_progress`: the runs being trained in ``results/`` (a checkpoint, no
  ``metrics.json``). Their progress changes by the minute, so they are not in the
  generated file: the page lists them when the site is built (``{runs-in-progress}``,
  ``book/_ext/runs_in_progress.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import iwae_lib.chapters.catalog as catalog
from iwae_lib.chapters import ESTIMATOR_LABELS
from iwae_lib import recipes
from iwae_lib.bookkeeping import sessions, status
from iwae_lib.config import TrainConfig

RUNS_TABLE = Path("book") / "_generated" / "runs.md"
HEADER = ("run", "chapters", "recipe", "epochs done / total", "selected epoch", "training hours",
          "training sessions", "hardware", "recorded with revision")
NOT_RECORDED = "not recorded"


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


ADAM_DEFAULTS = (("beta1", "beta1", 0.9), ("beta2", "beta2", 0.999), ("epsilon", "epsilon", 1e-4),
                 ("adam_v_init", "second moments from", 0.0))


def recipe_text(config: TrainConfig) -> str:
    """The training recipe in the words of the chapters' runs note: ``"fast"``, ``"paper's recipe"``,
    ``"paper's stages scaled"``, ``"constant rate 0.001"``, ``"linear decay from 0.003, weight
    average"``, then the gradient estimator where it is not the standard one (``"fast, DReG
    gradients"``) and Adam's settings where they are not the paper's (``"fast, Adam beta1 0.99"``)."""
    adam_keys = {key for key, _, _ in ADAM_DEFAULTS}
    named = [name for name in ("fast", "paper")
             if all(getattr(config, key) == value for key, value in recipes.RECIPES[name].items()
                    if key not in adam_keys)]
    if named:
        words = {"fast": "fast", "paper": "paper's recipe"}[named[0]]
    else:
        words = {"scaled": "paper's stages scaled", "paper": "paper's stages",
                 "constant": f"constant rate {config.learning_rate:g}",
                 "linear_decay": f"linear decay from {config.learning_rate:g}"}.get(config.schedule, config.schedule)
        if config.schedule == "scaled" and config.learning_rate != 1e-3:
            words += f" from {config.learning_rate:g}"
        if config.ema_decay:
            words += ", weight average"
        if config.batch_size != 20:
            words += f", batch {config.batch_size}"
    if config.estimator != "standard":  # the chapters' legend words
        words += f", {ESTIMATOR_LABELS[config.estimator]} gradients"
    adam = [f"{name} {getattr(config, key, usual):g}" for key, name, usual in ADAM_DEFAULTS
            if getattr(config, key, usual) != usual]
    return words + (f", Adam {', '.join(adam)}" if adam else "")


def short_revision(revision: str) -> str:
    """``"d263f2b"`` for a 40-digit commit, ``"+dirty"`` kept (uncommitted changes were present)."""
    commit, dirty, _ = str(revision).partition("+dirty")
    return (commit[:7] if len(commit) == 40 else commit) + dirty


def _hardware(metrics: dict) -> str:
    """The processors the run was trained on (every session's, in order) and the GPUs."""
    environment = metrics.get("environment") or {}
    sessions = [s.get("environment") or {} for s in metrics.get("training_sessions") or []]
    cpus = []
    for env in sessions + [environment]:
        cpu = env.get("cpu")
        if cpu and cpu not in cpus:
            cpus.append(cpu)
    gpus = []
    for env in sessions + [environment]:
        for gpu in env.get("gpus") or []:
            if gpu not in gpus:
                gpus.append(gpu)
    text = " / ".join(cpus) or "not recorded"
    if environment.get("cpu_count"):
        text += f", {environment['cpu_count']} cores"
    return text + (" + " + ", ".join(gpus) if gpus else ", no GPU")


def _sessions(metrics: dict) -> str:
    try:
        return str(len(sessions.session_rows(metrics)))
    except (KeyError, ValueError, TypeError):
        return "not recorded"


def _final_metrics(run, results: Path) -> dict | None:
    """The metrics.json that describes run ``run`` as a whole (a snapshot chain: its last snapshot)."""
    folder = results / run.name
    if run.kind == "snapshots":
        if not all((folder / catalog.segment_name(e) / "metrics.json").is_file() for e in run.snapshot_epochs):
            return None
        folder = folder / catalog.segment_name(run.snapshot_epochs[-1])
    return _read_json(folder / "metrics.json")


def record_command(run) -> str:
    """The command that records a catalog run into ``results/<name>``: the training command
    with the run's options written out, or ``python -m iwae_lib record NAME`` for a chain of
    snapshots."""
    if run.kind == "snapshots":
        return status.record_command(run.name)
    return status.train_command(run.name, run.config)


def rows(results: Path, runs: dict | None = None) -> list:
    """One dict per run shown (default: :func:`~iwae_lib.chapters.catalog.shown_runs`, in that
    order): the cells of :data:`HEADER` as strings, plus ``name``, ``state`` ("recorded" or
    "not recorded") and ``command``."""
    runs = catalog.shown_runs(results) if runs is None else runs
    table = []
    for run in runs.values():
        metrics = _final_metrics(run, Path(results))
        row = {"name": run.name, "chapters": ", ".join(str(c) for c in run.chapters),
               "recipe": recipe_text(run.config), "command": record_command(run)}
        if metrics is None:
            row.update({"state": NOT_RECORDED, "epochs done / total": f"{NOT_RECORDED} (of {run.total_epochs})",
                        "selected epoch": "", "training hours": "", "training sessions": "", "hardware": "",
                        "recorded with revision": ""})
        else:
            done, total = metrics.get("epochs_completed"), metrics.get("total_epochs", run.total_epochs)
            epochs = f"{done} / {total}" + (", stopped early" if metrics.get("stopped_early") else "")
            if run.kind == "snapshots":
                epochs += f" (snapshots after {', '.join(str(e) for e in run.snapshot_epochs)})"
            seconds = (metrics.get("wall_seconds") or {}).get("training")
            revision = (metrics.get("environment") or {}).get("git_revision")
            row.update({"state": "recorded", "epochs done / total": epochs,
                        "selected epoch": str(metrics.get("selected_epoch", done)),
                        "training hours": f"{seconds / 3600:.2f}" if seconds is not None else "not recorded",
                        "training sessions": _sessions(metrics), "hardware": _hardware(metrics),
                        "recorded with revision": f"`{short_revision(revision)}`" if revision else "not recorded"})
        table.append(row)
    return table


def chapter_documents(root: Path) -> dict:
    """catalog chapter number (the notebook's file prefix) -> (document name, the number the
    book's table of contents gives it), e.g. 9 -> ("notebooks/08_beyond_the_paper", "8") once
    a chapter before it is gone. A notebook in a part captioned "Appendix" shows as "appendix";
    any other outside the numbered parts keeps its file number."""
    import yaml

    root = Path(root)
    documents = {int(path.name.split("_")[0]): f"notebooks/{path.stem}"
                 for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    numbers = {}
    toc_file = root / "_toc.yml"
    if toc_file.is_file():
        toc = yaml.safe_load(toc_file.read_text(encoding="utf-8")) or {}
        for part in toc.get("parts", []):
            files = [chapter["file"] for chapter in part.get("chapters", [])]
            if part.get("numbered"):
                numbers.update({file: str(i) for i, file in enumerate(files, 1)})
            elif str(part.get("caption", "")).lower().startswith("appendix"):
                numbers.update({file: "appendix" for file in files})
    return {number: (document, numbers.get(document, str(number))) for number, document in documents.items()}


def _chapter_links(chapters: str, documents: dict) -> str:
    links = []
    for number in chapters.split(", "):
        document, shown = documents.get(int(number), (None, number)) if number.isdigit() else (None, number)
        links.append(f"{{doc}}`{shown} </{document}>`" if document else number)
    return ", ".join(links)


def markdown_table(results: Path, root: Path, link=None) -> str:
    """The runs as a Markdown table (no trailing newline); ``link(name)`` the address of a run's folder."""
    documents = chapter_documents(root)
    lines = ["| " + " | ".join(HEADER) + " |", "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for row in rows(results):
        run = f"`{row['name']}`"
        if link is not None and row["state"] == "recorded":
            run = f"[{run}]({link(row['name'])})"
        cells = [run, _chapter_links(row["chapters"], documents)] + [row[h] for h in HEADER[2:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def commands_block(results: Path) -> str:
    """A bash block: the command that records each run, one per line, in catalog order."""
    return "```bash\n" + "\n".join(row["command"] for row in rows(results)) + "\n```"


def summary(results: Path) -> str:
    states = [row["state"] for row in rows(results)]
    recorded = states.count("recorded")
    return (f"{recorded} of the book's {len(states)} runs are recorded in `results/`"
            + ("." if recorded == len(states) else f"; {len(states) - recorded} are not yet."))


def book_block(results: Path, root: Path, url: str) -> str:
    """``book/_generated/runs.md``: the summary, the table (recorded runs linked to their
    folders in the repository at ``url``) and the commands."""
    return ("<!-- written by `python -m iwae_lib.chapters.tables --write` from results/ and "
            "iwae_lib/chapters/catalog.py; do not edit by hand -->\n\n"
            f"{summary(results)}\n\n"
            f"{markdown_table(results, root, link=lambda name: f'{url}/tree/main/results/{name}')}\n\n"
            "The command that records each run, in the table's order (each resumes an interrupted run "
            "when given again with `--resume`; `python -m iwae_lib record NAME` does the same for any of "
            "them):\n\n"
            f"{commands_block(results)}\n")


def in_progress(results: Path) -> list:
    """The runs being trained in ``results``: folders with a checkpoint and ``progress.json``
    but no ``metrics.json``, by name. Dicts: ``name``, ``recipe``, ``epochs_done``,
    ``total_epochs``."""
    found = []
    results = Path(results)
    if not results.is_dir():
        return found
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        if (folder / "metrics.json").exists() or not (folder / "checkpoint.npz").is_file():
            continue
        progress, stored = _read_json(folder / "progress.json"), _read_json(folder / "config.json")
        if progress is None or not stored or "train" not in stored:
            continue
        config = TrainConfig.from_dict(stored["train"])
        found.append({"name": folder.name, "recipe": recipe_text(config),
                      "epochs_done": int(progress.get("epochs_completed", 0)),
                      "total_epochs": int(progress.get("total_epochs") or config.total_epochs())})
    return found
