"""``python -m iwae_lib train``: build the TrainConfig from flags and files, check the run
directory, train, and report (or say where to resume after an interruption)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from iwae_lib.cli.common import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, check_writable,
                                 read_json)
from iwae_lib import recipes
from iwae_lib.cli.flags import add_config_flags
from iwae_lib.config import TrainConfig, config_differences
from iwae_lib.run_dir import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, checkpoint_position


def train_options_from_file(path) -> dict:
    """TrainConfig fields from a JSON file: a run's config.json ({"train": ...}) or a flat dict."""
    record = read_json(Path(path), "config file")
    options = record["train"] if isinstance(record.get("train"), dict) else record
    return dict(options)


def check_run_dir(out: Path, config: TrainConfig, resume: bool):
    """Refuse to mix runs: a different config is always an error, the same one needs --resume."""
    stored_path = out / CONFIG_FILE
    if stored_path.exists():
        stored = read_json(stored_path, "run configuration").get("train", {})
        differing = config_differences(stored, config.to_dict())
        if differing:
            raise UsageError(
                f"{out} already holds a run with a different configuration (differs in: {', '.join(differing)}); "
                "choose another --out, or delete that directory to start over")
        started = (out / CHECKPOINT_FILE).exists() or (out / METRICS_FILE).exists()
        if started and not resume:
            raise UsageError(f"{out} already holds this run; add --resume to continue it, or choose another --out")
    elif resume:
        raise UsageError(f"--resume: {out} holds no run to resume (no {CONFIG_FILE}); drop --resume to start one")
    check_writable(out)


def build_train_config(args) -> TrainConfig:
    """The TrainConfig of a ``train`` command line (raises UsageError on any bad value)."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    explicit = {name: getattr(args, name) for name in names if hasattr(args, name)}
    options = {}
    stored_path = Path(args.out) / CONFIG_FILE
    if args.resume and stored_path.is_file():
        options.update(read_json(stored_path, "run configuration").get("train", {}))
    if getattr(args, "recipe", None):
        try:
            options.update(recipes.recipe_options(args.recipe))
        except ValueError as err:
            raise UsageError(str(err)) from err
    if args.config:
        options.update(train_options_from_file(args.config))
    options.update(explicit)
    if options.get("schedule") == "paper" and "epochs" not in options:
        options["epochs"] = None  # the paper schedule fixes its own length
    try:
        return TrainConfig.from_dict(options)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err


def resume_hint(out: Path) -> str:
    """A sentence saying where an interrupted run can be continued from."""
    position = checkpoint_position(out)
    command = f"python -m iwae_lib train --out {out} --resume"
    if position is None:
        return f"no checkpoint was written yet in {out}; run the same command again to start over"
    done, step = position["epoch"], position["step_in_epoch"]
    where = f"{done} completed epochs" + (f" and {step} steps into epoch {done + 1}" if step else "")
    return f"the last checkpoint ({out / CHECKPOINT_FILE}) is after {where}; continue with: {command}"


def run_train(args) -> int:
    config = build_train_config(args)
    out = Path(args.out)
    check_run_dir(out, config, args.resume)
    from iwae_lib import data, training  # after validation: nothing heavy happens for a bad command

    already_finished = (out / METRICS_FILE).exists()
    try:
        metrics = training.train(config, out, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {resume_hint(out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except data.DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (FloatingPointError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    if already_finished:
        print(f"{out} had already finished; its recorded results:")
    print(result_lines(metrics, out))
    return 0


def result_lines(metrics: dict, out: Path) -> str:
    lines = [f"test log-likelihood (k={metrics['final_k']}, {metrics['test_images']} images): "
             f"{metrics['test_log_likelihood']:.3f} +- {metrics['test_log_likelihood_stderr']:.3f} nats",
             f"train log-likelihood ({metrics['train_images']} images): {metrics['train_log_likelihood']:.3f} nats",
             f"active units: {metrics['active_units']}",
             f"weights: {out / WEIGHTS_FILE}"]
    return "\n".join(lines)


def add_parser(commands):
    """The ``train`` subcommand."""
    train = commands.add_parser("train", help="train a model (or continue a run with --resume)",
                                description="Train a VAE/IWAE; results go to the run directory --out.")
    train.add_argument("--out", required=True, metavar="DIR", help="run directory (created if needed)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint (its stored options are the defaults)")
    train.add_argument("--recipe", choices=sorted(recipes.RECIPES),
                       help="start from a named training recipe (iwae_lib/recipes.py: schedule, learning rate, "
                            "batch, Adam, weight average, epochs); --config and flags override it")
    train.add_argument("--config", metavar="FILE.json",
                       help="read options from a JSON file (a run's config.json or a flat dict); flags override it")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_flags(train)
    train.set_defaults(handler=run_train)
