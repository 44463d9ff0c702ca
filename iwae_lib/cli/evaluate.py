"""``python -m iwae_lib evaluate``: log p(x) of a finished run's weights, with the library or
the NumPy reference."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from iwae_lib import checkpoints, models
from iwae_lib.cli.common import EXIT_FAILURE, UsageError, check_writable, read_json
from iwae_lib.config import TrainConfig
from iwae_lib.run_dir import (CHECKPOINT_FILE, CONFIG_FILE, EVAL_SEED_OFFSETS, METRICS_FILE, TEST_LL_FILE,
                              TRAIN_EVAL_BINARIZATION_SEED, WEIGHTS_FILE, save_log_likelihoods)


def locate_run(path) -> tuple:
    """(weights path, run directory) for a run directory or a weights.npz inside one."""
    path = Path(path)
    is_weights = path.is_file() or (path.suffix == ".npz" and not path.exists())
    weights, run_dir = (path, path.parent) if is_weights else (path / WEIGHTS_FILE, path)
    if not (run_dir / CONFIG_FILE).is_file():
        where = run_dir if run_dir.is_dir() else f"{run_dir} (no such directory)"
        raise UsageError(f"no {CONFIG_FILE} in {where}: point evaluate at a run directory or its {WEIGHTS_FILE}")
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
        weights = checkpoints.load_arrays(weights_path)  # checkpoints.DamagedFile if damaged
    except OSError as err:
        raise UsageError(f"cannot read weights {weights_path}: {err}") from err
    expected = {name: value.shape for name, value in models.init_params(model).items()}
    got = {name: value.shape for name, value in weights.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        wrong = sorted(n for n in set(expected) & set(got) if expected[n] != got[n])
        raise UsageError(f"{weights_path} does not match the architecture in {CONFIG_FILE} "
                         f"(missing: {missing or 'none'}, wrong shapes: {wrong or 'none'})")
    return weights, model, train_config, weights_path


def damaged_weights_remedy(weights_path: Path) -> str:
    """What to do about a damaged weights.npz: put it back, or write it again from the checkpoint."""
    run_dir = weights_path.parent
    again = "train the run again"
    if (run_dir / CHECKPOINT_FILE).is_file():
        again = (f"delete it and {METRICS_FILE}, then write both again from the run's checkpoint: "
                 f"python -m iwae_lib train --out {run_dir} --resume")
    return f"Put back an intact copy (of a run recorded in git: git checkout -- {weights_path}), or {again}"


def evaluation_images(train_config: TrainConfig, split: str, size: int | None):
    """The images training's final evaluation uses for ``split``: float32 [N, 784] of 0/1
    (pixel levels 0..255 for the 8-bit model, as ``training.prepare_data`` gives them)."""
    from iwae_lib import data, training

    ds = training.prepare_data(train_config,
                               data.load_dataset(train_config.dataset, train_config.validation_size, train_config.seed))
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
        x = data.binarize(x, TRAIN_EVAL_BINARIZATION_SEED)
    return np.asarray(x, np.float32)


def run_evaluate(args) -> int:
    if args.k < 1:
        raise UsageError(f"--k must be >= 1, got {args.k}")
    if args.size is not None and args.size < 1:
        raise UsageError(f"--size must be >= 1, got {args.size}")
    try:
        weights, model, train_config, weights_path = load_run(args.path)
    except checkpoints.DamagedFile as err:
        print(f"error: {err}. {damaged_weights_remedy(err.path)}", file=sys.stderr)
        return EXIT_FAILURE
    seed = args.seed if args.seed is not None else train_config.seed + EVAL_SEED_OFFSETS[args.split]
    if args.record_per_image:
        args.size = train_config.final_test_size if args.size is None else args.size
        check_per_image_request(args, train_config, weights_path.parent)
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
        checkpoints.save_json(args.json, result)
    if args.record_per_image:
        return record_per_image(ll, args.k, seed, weights_path.parent)
    return 0


# The per-image record must reproduce the recorded mean: the same weights, images, k and seed
# give the same estimates up to float32 summation order.
PER_IMAGE_MEAN_TOLERANCE = 1e-3


def check_per_image_request(args, train_config: TrainConfig, run_dir: Path):
    """--record-per-image writes the final test evaluation again: refuse any other evaluation."""
    wanted = {"--split": (args.split, "test"), "--k": (args.k, train_config.final_k),
              "--size": (args.size, train_config.final_test_size), "--seed": (args.seed, None),
              "--numpy": (args.numpy, False)}
    wrong = [f"{flag} {got}" for flag, (got, expected) in wanted.items() if got != expected]
    if wrong:
        raise UsageError(f"--record-per-image repeats the run's final test evaluation (k={train_config.final_k}, "
                         f"its test images and seed, TensorFlow); drop {', '.join(wrong)}")
    if not (run_dir / METRICS_FILE).is_file():
        raise UsageError(f"{run_dir} has no {METRICS_FILE} to check the per-image estimates against")


def record_per_image(ll, k: int, seed: int, run_dir: Path) -> int:
    """Write ``test_log_likelihoods.npz`` if ``ll`` [N] reproduces the recorded mean."""
    recorded = read_json(run_dir / METRICS_FILE, "metrics")["test_log_likelihood"]
    if abs(float(np.mean(ll)) - recorded) > PER_IMAGE_MEAN_TOLERANCE:
        print(f"error: these estimates (mean {np.mean(ll):.5f}) do not reproduce the recorded test log-likelihood "
              f"{recorded:.5f} of {run_dir}; {TEST_LL_FILE} was not written", file=sys.stderr)
        return EXIT_FAILURE
    save_log_likelihoods(run_dir, ll, k, seed)
    print(f"per-image estimates written to {run_dir / TEST_LL_FILE}")
    return 0


def add_parser(commands):
    """The ``evaluate`` subcommand."""
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
    evaluate.add_argument("--record-per-image", action="store_true",
                          help="repeat the run's final test evaluation and, if it reproduces the recorded mean, "
                               "write the per-image estimates to test_log_likelihoods.npz in the run directory")
    evaluate.set_defaults(handler=run_evaluate)
