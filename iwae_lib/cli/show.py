"""``python -m iwae_lib show``: a text summary of one run directory."""

from __future__ import annotations

import math
from pathlib import Path

from iwae_lib.cli.common import UsageError, read_json
from iwae_lib.run_dir import checkpoint_position
from iwae_lib.run_dir import CONFIG_FILE, METRICS_FILE, PROGRESS_FILE


def _fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 1e-2 or value == 0 else f"{value:.2e}"
    return str(value)


def history_table(history: list, max_rows: int = 25) -> str:
    """The learning curve as a fixed-width table; long histories keep evaluated epochs and the last."""
    if not history:
        return "(no completed epochs yet)"
    rows = history
    if len(rows) > max_rows:
        evaluated = [e for e in rows if "test_bound" in e or "valid_bound" in e]
        rows = evaluated if evaluated else rows
        if len(rows) > max_rows:
            step = math.ceil(len(rows) / max_rows)
            rows = rows[::step]
        if rows[-1] is not history[-1]:
            rows = rows + [history[-1]]
    columns = [("epoch", "epoch", 0), ("stage", "stage", 0), ("lr", "learning_rate", 6),
               ("train bound", "train_bound", 2), ("valid bound", "valid_bound", 2), ("test bound", "test_bound", 2)]
    columns = [c for c in columns if any(c[1] in e for e in rows)]
    cells = [[title for title, _, _ in columns]]
    for entry in rows:
        cells.append([_fmt(entry.get(key), digits) if key != "learning_rate" or key not in entry
                      else f"{entry[key]:.2e}" for _, key, digits in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells)


def describe_config(train: dict, model: dict | None) -> str:
    arch = ""
    if model:
        layers = [str(model.get("x_size", 784))]
        for hidden, latent in zip(model["hidden_sizes"], model["latent_sizes"]):
            layers += [str(h) for h in hidden] + [f"[{latent}]"]
        arch = "-".join(layers)
    keys = ("dataset", "objective", "k", "estimator", "batch_size", "schedule", "epochs", "learning_rate", "seed")
    text = " ".join(f"{key}={train.get(key)}" for key in keys if key in train)
    return f"{text}\nmodel: {arch}" if arch else text


def summarize_run(run_dir, all_rows: bool = False) -> str:
    """A short text summary of a run directory: config, progress, learning curve, results."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise UsageError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    record = read_json(run_dir / CONFIG_FILE, "run configuration")
    lines = [f"run: {run_dir}", "config: " + describe_config(record.get("train", {}), record.get("model"))]
    metrics = read_json(run_dir / METRICS_FILE, "metrics") if (run_dir / METRICS_FILE).is_file() else None
    progress = read_json(run_dir / PROGRESS_FILE, "progress") if (run_dir / PROGRESS_FILE).is_file() else None
    if metrics:
        history = metrics.get("history", [])
        early = " (stopped early)" if metrics.get("stopped_early") else ""
        lines.append(f"status: finished, {metrics['epochs_completed']} of {metrics['total_epochs']} epochs{early}, "
                     f"selected epoch {metrics.get('selected_epoch')}")
    elif progress:
        history = progress.get("history", [])
        position = checkpoint_position(run_dir)
        where = ""
        if position and position["step_in_epoch"]:
            where = f" (+{position['step_in_epoch']} steps of epoch {position['epoch'] + 1})"
        lines.append(f"status: not finished, {progress['epochs_completed']} of {progress['total_epochs']} "
                     f"epochs checkpointed{where}; continue with --resume")
    else:
        history = []
        lines.append("status: started, no checkpoint yet")
    lines += ["", history_table(history, max_rows=10**9 if all_rows else 25)]
    if metrics:
        gap = metrics["train_log_likelihood"] - metrics["test_log_likelihood"]
        wall = metrics.get("wall_seconds", {})
        env = metrics.get("environment", {})
        lines += ["",
                  f"test log-likelihood:  {metrics['test_log_likelihood']:.3f} +- "
                  f"{metrics['test_log_likelihood_stderr']:.3f} nats (k={metrics['final_k']}, "
                  f"{metrics['test_images']} images)",
                  f"train log-likelihood: {metrics['train_log_likelihood']:.3f} nats "
                  f"({metrics['train_images']} images; train - test = {gap:.3f})",
                  f"active units:         {metrics['active_units']}",
                  f"wall time:            {wall.get('training', 0.0):.1f} s training, "
                  f"{wall.get('final_evaluation', 0.0):.1f} s final evaluation",
                  f"git revision:         {env.get('git_revision', 'unknown')}"]
    return "\n".join(lines)


def run_show(args) -> int:
    print(summarize_run(args.run_dir, all_rows=args.all))
    return 0


def add_parser(commands):
    """The ``show`` subcommand."""
    show = commands.add_parser("show", help="summarise a run directory", description="Summarise a run directory.")
    show.add_argument("run_dir", metavar="RUN_DIR")
    show.add_argument("--all", action="store_true", help="show every epoch of the learning curve")
    show.set_defaults(handler=run_show)
