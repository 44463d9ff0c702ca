"""Command line: ``python -m iwae_lib train | evaluate | show`` (also installed as ``iwae``).

    python -m iwae_lib train --out runs/iwae_k5 --k 5 --objective iwae --epochs 328
    python -m iwae_lib train --out runs/iwae_k5 --resume          # continue after a stop
    python -m iwae_lib evaluate runs/iwae_k5 --k 5000 --split test
    python -m iwae_lib show runs/iwae_k5

``train`` has one flag per field of :class:`iwae_lib.config.TrainConfig`, generated from
the dataclass so the two never drift apart. Options are resolved in this order, later
ones winning: the dataclass defaults, the stored config of the run (with ``--resume``),
``--config FILE.json``, the flags given. The configuration is validated before any data
is read, and every problem a person can fix ends as one ``error: ...`` line.

Exit status: 0 success, 1 a failure while running (missing data, diverged training,
damaged checkpoint), 2 a usage or configuration error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import types
import typing
from pathlib import Path

import numpy as np

from iwae_lib import checkpoints, models
from iwae_lib.config import TrainConfig, config_differences
from iwae_lib.training import (CHECKPOINT_FILE, CONFIG_FILE, EVAL_SEED_OFFSETS, METRICS_FILE, PROGRESS_FILE,
                               WEIGHTS_FILE)

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

FIELD_HELP = {
    "dataset": "data set: mnist (dynamically binarized), binarized_mnist (Larochelle's) or omniglot",
    "n_stochastic": "stochastic layers of the paper's architecture (1 or 2)",
    "latent_sizes": "sizes of h_1..h_L, e.g. '100 50'; None: the paper's for --n-stochastic",
    "hidden_sizes": "hidden tanh layers per stochastic layer, e.g. '200,200 100,100'; None: the paper's",
    "objective": "training bound: vae, iwae, miwae or ciwae",
    "k": "importance samples per image during training",
    "estimator": "gradient estimator: standard, stl or dreg (dreg: iwae only)",
    "miwae_groups": "MIWAE: number of groups the k samples are split into",
    "ciwae_beta": "CIWAE: weight beta of the ELBO in beta*ELBO + (1-beta)*IWAE",
    "batch_size": "images per optimisation step",
    "schedule": "learning-rate schedule: paper (3280 epochs), scaled (paper stages scaled to --epochs), constant",
    "epochs": "training epochs ('none' with --schedule paper, which is the default there)",
    "learning_rate": "base learning rate (stage i of the paper schedule uses rate * 10^(-i/7))",
    "beta1": "Adam beta1",
    "beta2": "Adam beta2",
    "epsilon": "Adam epsilon",
    "seed": "seed of the initialisation, data order and samples",
    "train_size": "use only the first N training images ('none': all)",
    "validation_size": "images held out of the training set for validation (0: none)",
    "patience": "early stopping after this many evaluations without validation improvement",
    "eval_every": "epochs between held-out bound evaluations (0: never)",
    "eval_size": "held-out images used for those evaluations",
    "final_k": "samples per image of the final log-likelihood estimate",
    "final_test_size": "test images of the final estimate ('none': all)",
    "final_train_size": "training images of the final train log-likelihood",
    "steps_per_call": "optimisation steps per compiled call",
    "checkpoint_seconds": "seconds between checkpoints within an epoch (also written at stage ends)",
}


class UsageError(Exception):
    """Bad command-line input or configuration: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error becomes a UsageError (one line, no usage dump)."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ----------------------------------------------------------------------------- flags from TrainConfig


def flag_name(field_name: str) -> str:
    """``learning_rate`` -> ``--learning-rate``."""
    return "--" + field_name.replace("_", "-")


def _split_optional(hint):
    """(base type, optional?) of a type hint such as ``int | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        base = args[0] if len(args) == 1 else str
        return (typing.get_origin(base) or base), optional
    return (typing.get_origin(hint) or hint), False


def _is_none_word(text: str) -> bool:
    return text.strip().lower() in ("none", "all", "null")


def _number_parser(base, optional: bool, field_name: str):
    def parse(text):
        if optional and _is_none_word(text):
            return None
        try:
            return base(text)
        except ValueError:
            kind = "an integer" if base is int else "a number"
            extra = " or 'none'" if optional else ""
            raise argparse.ArgumentTypeError(f"expected {kind}{extra}, got {text!r}") from None

    parse.__name__ = field_name
    return parse


def _nested_sizes(field_name: str) -> bool:
    """Whether a size-list field holds one list per stochastic layer (as ModelConfig's does)."""
    defaults = {f.name: f.default for f in dataclasses.fields(models.ModelConfig)}
    value = defaults.get(field_name)
    return isinstance(value, tuple) and bool(value) and isinstance(value[0], tuple)


def _sizes_parser(nested: bool, field_name: str):
    def parse(text):
        try:
            sizes = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
        if not sizes:
            raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
        if nested:
            return sizes
        if len(sizes) != 1:
            raise argparse.ArgumentTypeError(f"expected one integer per value (separate them by spaces), got {text!r}")
        return sizes[0]

    parse.__name__ = field_name
    return parse


def add_config_flags(parser: argparse.ArgumentParser):
    """One flag per TrainConfig field. Unset flags stay absent from the parsed namespace."""
    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("training options (TrainConfig fields)")
    for field in dataclasses.fields(TrainConfig):
        base, optional = _split_optional(hints[field.name])
        default = field.default
        help_text = f"{FIELD_HELP.get(field.name, field.name.replace('_', ' '))} (default: {default})"
        common = {"dest": field.name, "default": argparse.SUPPRESS, "help": help_text}
        if base is bool:
            group.add_argument(flag_name(field.name), action=argparse.BooleanOptionalAction, **common)
        elif base in (int, float):
            group.add_argument(flag_name(field.name), type=_number_parser(base, optional, field.name),
                               metavar="N" if base is int else "X", **common)
        elif base in (tuple, list):
            nested = _nested_sizes(field.name)
            group.add_argument(flag_name(field.name), type=_sizes_parser(nested, field.name), nargs="+",
                               metavar="N,N" if nested else "N", **common)
        else:
            group.add_argument(flag_name(field.name), type=str, metavar="NAME", **common)


# ----------------------------------------------------------------------------- run directories


def read_json(path: Path, what: str) -> dict:
    try:
        with open(path) as f:
            value = json.load(f)
    except OSError as err:
        raise UsageError(f"cannot read {what} {path}: {err.strerror or err}") from err
    except json.JSONDecodeError as err:
        raise UsageError(f"{what} {path} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise UsageError(f"{what} {path} must hold a JSON object")
    return value


def train_options_from_file(path) -> dict:
    """TrainConfig fields from a JSON file: a run's config.json ({"train": ...}) or a flat dict."""
    record = read_json(Path(path), "config file")
    options = record["train"] if isinstance(record.get("train"), dict) else record
    return dict(options)


def checkpoint_position(run_dir) -> dict | None:
    """Where the run's checkpoint stands: {"epoch", "step_in_epoch", "global_step"}, or None."""
    path = Path(run_dir) / CHECKPOINT_FILE
    try:
        with np.load(path) as archive:
            counters = json.loads(str(archive["counters_json"]))
    except (OSError, KeyError, ValueError):
        return None
    return {key: counters.get(key) for key in ("epoch", "step_in_epoch", "global_step")}


def check_writable(out: Path):
    """Create ``out`` if needed and check a file can be written there (UsageError if not)."""
    try:
        checkpoints.ensure_writable_dir(out)
    except ValueError as err:
        raise UsageError(str(err)) from err


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
    if args.config:
        options.update(train_options_from_file(args.config))
    options.update(explicit)
    if options.get("schedule") == "paper" and "epochs" not in options:
        options["epochs"] = None  # the paper schedule fixes its own length
    try:
        return TrainConfig.from_dict(options)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err


# ----------------------------------------------------------------------------- train


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


# ----------------------------------------------------------------------------- evaluate


def locate_run(path) -> tuple:
    """(weights path, run directory) for a run directory or a weights.npz inside one."""
    path = Path(path)
    weights = path / WEIGHTS_FILE if path.is_dir() else path
    run_dir = weights.parent
    if not (run_dir / CONFIG_FILE).is_file():
        raise UsageError(f"no {CONFIG_FILE} in {run_dir}: point evaluate at a run directory or its {WEIGHTS_FILE}")
    if not weights.is_file():
        raise UsageError(f"no {weights.name} in {run_dir}: the run has not finished "
                         f"(continue it with: python -m iwae_lib train --out {run_dir} --resume)")
    return weights, run_dir


def load_run(path):
    """(weights dict, ModelConfig, TrainConfig, weights path) of a finished run."""
    weights_path, run_dir = locate_run(path)
    record = read_json(run_dir / CONFIG_FILE, "run configuration")
    try:
        train_config = TrainConfig.from_dict(record["train"])
        model = models.ModelConfig.from_dict(record["model"]) if "model" in record else train_config.model_config()
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"{run_dir / CONFIG_FILE} is not a valid run configuration: {err}") from err
    try:
        with np.load(weights_path) as archive:
            weights = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read weights {weights_path}: {err}") from err
    expected = {name: value.shape for name, value in models.init_params(model).items()}
    got = {name: value.shape for name, value in weights.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        wrong = sorted(n for n in set(expected) & set(got) if expected[n] != got[n])
        raise UsageError(f"{weights_path} does not match the architecture in {CONFIG_FILE} "
                         f"(missing: {missing or 'none'}, wrong shapes: {wrong or 'none'})")
    return weights, model, train_config, weights_path


def evaluation_images(train_config: TrainConfig, split: str, size: int | None):
    """The images training's final evaluation uses for ``split``: float32 [N, 784] of 0/1."""
    from iwae_lib import data, training

    ds = data.load_dataset(train_config.dataset, train_config.validation_size, train_config.seed)
    if split == "valid":
        if ds.valid is None:
            raise UsageError("this run has no validation set (validation_size = 0); use --split test or train")
        x = ds.valid
    elif split == "test":
        x = ds.test
    else:
        x = ds.train
    x = x if size is None else x[:size]
    if split == "train" and ds.dynamic:
        x = data.binarize(x, training.TRAIN_EVAL_BINARIZATION_SEED)
    return np.asarray(x, np.float32)


def run_evaluate(args) -> int:
    if args.k < 1:
        raise UsageError(f"--k must be >= 1, got {args.k}")
    if args.size is not None and args.size < 1:
        raise UsageError(f"--size must be >= 1, got {args.size}")
    weights, model, train_config, weights_path = load_run(args.path)
    seed = args.seed if args.seed is not None else train_config.seed + EVAL_SEED_OFFSETS[args.split]
    if args.json:
        check_writable(Path(args.json).resolve().parent)
    from iwae_lib import data

    try:
        x = evaluation_images(train_config, args.split, args.size)
    except data.DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    if args.numpy:
        try:
            from iwae_lib import numpy_reference
        except ImportError as err:
            raise UsageError(f"--numpy needs the module iwae_lib.numpy_reference, which cannot be imported: {err}")
        ll = numpy_reference.log_likelihood_np(numpy_reference.load_weights(weights_path), model.to_dict(), x,
                                               args.k, seed, args.chunk)
        evaluator = "numpy"
    else:
        from iwae_lib import evaluation

        ll = evaluation.log_likelihood(weights, model, x, k=args.k, seed=seed, chunk_size=args.chunk,
                                       progress=not args.no_progress,
                                       description=f"{args.split} log p(x), k={args.k}")
        evaluator = "tensorflow"
    ll = np.atleast_1d(np.asarray(ll, np.float64))
    result = {"weights": str(weights_path), "split": args.split, "k": args.k, "seed": seed,
              "images": int(len(ll)), "evaluator": evaluator, "log_likelihood": float(np.mean(ll)),
              "stderr": float(np.std(ll) / math.sqrt(len(ll))) if len(ll) > 1 else float("nan")}
    print(f"{args.split} log-likelihood (k={args.k}, {result['images']} images, seed {seed}, {evaluator}): "
          f"{result['log_likelihood']:.4f} +- {result['stderr']:.4f} nats")
    if args.json:
        from iwae_lib import checkpoints

        checkpoints.save_json(args.json, result)
    return 0


# ----------------------------------------------------------------------------- show


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


# ----------------------------------------------------------------------------- parser and entry point


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m iwae_lib",
                     description="Importance Weighted Autoencoders (Burda et al., 2015): train, evaluate, inspect runs.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a model (or continue a run with --resume)",
                                description="Train a VAE/IWAE; results go to the run directory --out.")
    train.add_argument("--out", required=True, metavar="DIR", help="run directory (created if needed)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint (its stored options are the defaults)")
    train.add_argument("--config", metavar="FILE.json",
                       help="read options from a JSON file (a run's config.json or a flat dict); flags override it")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_flags(train)
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser("evaluate", help="estimate log p(x) of a finished run's weights",
                                   description="Estimate log p(x) with k importance samples (the paper uses k=5000).")
    evaluate.add_argument("path", metavar="RUN_DIR_or_weights.npz")
    evaluate.add_argument("--k", type=int, default=5000, help="importance samples per image (default: 5000)")
    evaluate.add_argument("--split", choices=("test", "train", "valid"), default="test",
                          help="images to evaluate (default: test)")
    evaluate.add_argument("--size", type=int, default=None, help="evaluate the first N images (default: all)")
    evaluate.add_argument("--seed", type=int, default=None,
                          help="sampling seed (default: the one the run's final evaluation used for this split)")
    evaluate.add_argument("--chunk", type=int, default=100, help="samples per chunk (memory; default 100)")
    evaluate.add_argument("--numpy", action="store_true", help="use the NumPy reference evaluator")
    evaluate.add_argument("--json", metavar="OUT.json", help="also write the result as JSON")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.set_defaults(handler=run_evaluate)

    show = commands.add_parser("show", help="summarise a run directory", description="Summarise a run directory.")
    show.add_argument("run_dir", metavar="RUN_DIR")
    show.add_argument("--all", action="store_true", help="show every epoch of the learning curve")
    show.set_defaults(handler=run_show)
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m iwae_lib`` and the ``iwae`` script; returns the exit status."""
    try:
        args = make_parser().parse_args(argv)
        return args.handler(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
