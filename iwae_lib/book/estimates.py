"""How long a training run takes on this machine, from measured rates.

The basis is ``benchmarks/results.json`` (training steps/s of the one-layer model at
k = 1, 5, 50 and batch 20; seconds for the k=5000 log-likelihood of 10000 test images),
corrected by the epoch times that the runs in ``results/`` measured here, each at the pace
of its faster epochs (a run slowed by other work on the machine would inflate every
estimate; see :func:`epoch_pace`).

Cost model of one training step of a batch of B images with k samples:

    seconds = a + c * (B / 20) * (per_image(model) + k * per_sample(model))

where per_image / per_sample count the multiply-adds done once per image (the first
inference network) and once per sample (everything else); a and c are fitted by least
squares to the benchmark's three points, times the measured cost of the step's kind
relative to the standard IWAE step (``benchmarks/step_variants.json``: DReG and PIWAE take
two backward passes, the 8-bit likelihood evaluates logistic CDFs; see :func:`step_kind`).
Evaluations cost ``e * images * k *
per_sample(model) / per_sample(paper 1-layer model)`` seconds, e from the benchmark.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import numpy as np

from iwae_lib.config import TrainConfig
from iwae_lib.models import ModelConfig, paper_model

TRAIN_IMAGES = {"mnist": 60000, "binarized_mnist": 50000, "omniglot": 24345}
TEST_IMAGES = {"mnist": 10000, "binarized_mnist": 10000, "omniglot": 8070}
DYNAMIC = {"mnist": True, "binarized_mnist": False, "omniglot": True}
# Used when benchmarks/results.json is absent (the README's measured figures).
FALLBACK_BENCHMARK = {"training": [{"k": 1, "library_steps_per_s": 580.0}, {"k": 5, "library_steps_per_s": 386.0},
                                   {"k": 50, "library_steps_per_s": 105.0}],
                      "evaluation": {"images": 10000, "k": 5000, "library_seconds": 180.0}, "batch_size": 20}


# The step kind the benchmark's rates are of (the cost model's ratio 1 by definition).
BASIS_KINDS = ("iwae/standard/bernoulli",)


def step_kind(config: TrainConfig) -> str:
    """What a step computes beyond its multiply-adds: "objective/estimator/likelihood"
    (PIWAE with its encoder's bound: "piwae-miwae/standard/bernoulli")."""
    objective = f"piwae-{config.piwae_encoder}" if config.objective == "piwae" else config.objective
    return f"{objective}/{config.estimator}/{config.likelihood}"


def load_kind_ratios(path) -> dict:
    """step kind -> measured seconds per step / the standard IWAE step's, from
    ``benchmarks/step_variants.json`` (empty when the file is missing)."""
    path = Path(path)
    if not path.is_file():
        return {}
    return {kind: row["ratio_median"] for kind, row in json.loads(path.read_text())["step_kinds"].items()}


def _dense_macs(sizes) -> int:
    return int(sum(a * b for a, b in zip(sizes[:-1], sizes[1:])))


def multiply_adds(model: ModelConfig) -> tuple:
    """(per image, per sample) multiply-adds of one forward pass of ``model``.

    Per image: the inference network of h_1 (its input is x, shared by the k samples).
    Per sample: the inference networks of h_2.., and the whole generative network.
    """
    below = model.x_size
    per_image = per_sample = 0
    for layer, (latent, hidden) in enumerate(zip(model.latent_sizes, model.hidden_sizes)):
        encoder = _dense_macs([below, *hidden]) + 2 * hidden[-1] * latent  # mean and log std
        decoder = _dense_macs([latent, *reversed(hidden)]) + hidden[0] * (below if layer == 0 else 2 * below)
        if layer == 0:
            per_image += encoder
        else:
            per_sample += encoder
        per_sample += decoder
        below = latent
    return per_image, per_sample


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Fitted step and evaluation costs (seconds), with the factor measured on this machine.

    step_fixed: a; step_per_mac: c (per multiply-add at batch 20); eval_per_sample:
    seconds per image-sample of the paper's one-layer model; factor: measured / predicted
    training time of the runs in results/ (1.0 when none); basis: one sentence.
    """

    step_fixed: float
    step_per_mac: float
    eval_per_sample: float
    factor: float
    basis: str
    kind_ratios: dict = dataclasses.field(default_factory=dict)  # step kind -> cost / standard IWAE step's

    def step_seconds(self, config: TrainConfig) -> float:
        per_image, per_sample = multiply_adds(config.model_config())
        plain = self.step_fixed + self.step_per_mac * config.batch_size / 20 * (per_image + config.k * per_sample)
        return plain * self.kind_ratios.get(step_kind(config), 1.0)

    def eval_seconds(self, model: ModelConfig, images: int, k: int) -> float:
        return self.eval_per_sample * images * k * multiply_adds(model)[1] / multiply_adds(paper_model(1))[1]


def load_benchmark(path) -> dict:
    """benchmarks/results.json as a dict (the README's figures if the file is missing)."""
    path = Path(path)
    if path.is_file():
        return json.loads(path.read_text())
    return FALLBACK_BENCHMARK


def fit_costs(benchmark: dict) -> tuple:
    """(a, c, e) of the module docstring from a benchmark dict."""
    model = paper_model(1)
    per_image, per_sample = multiply_adds(model)
    rows = benchmark["training"]
    batch = benchmark.get("batch_size", 20)
    design = np.array([[1.0, batch / 20 * (per_image + row["k"] * per_sample)] for row in rows])
    seconds = np.array([1.0 / row["library_steps_per_s"] for row in rows])
    (a, c), *_ = np.linalg.lstsq(design, seconds, rcond=None)
    ev = benchmark["evaluation"]
    return float(max(a, 0.0)), float(c), ev["library_seconds"] / (ev["images"] * ev["k"])


def train_images(config: TrainConfig) -> int:
    """Training images per epoch (the validation images of dynamic data sets leave the training set)."""
    if config.train_size is not None:
        return config.train_size
    n = TRAIN_IMAGES[config.dataset]
    return n - config.validation_size if DYNAMIC[config.dataset] else n


def steps_per_epoch(config: TrainConfig) -> int:
    return train_images(config) // config.batch_size


def epoch_pace(history) -> float | None:
    """Seconds per epoch of a learning curve at the pace of its faster epochs, or None.

    ``history``: the records of ``progress.json`` / ``metrics.json``, each with the
    cumulative ``train_seconds``. The pace is the lower quartile of the epoch-to-epoch
    differences: epochs slowed by other work sharing the machine (a test suite, a second
    run) sit above it, so it measures what the machine does when the run has it alone.
    """
    seconds = [0.0] + [record.get("train_seconds") or 0.0 for record in history]
    durations = [b - a for a, b in zip(seconds[:-1], seconds[1:]) if b > a]
    return float(np.percentile(durations, 25)) if durations else None


def measured_run(run_dir) -> tuple | None:
    """(TrainConfig, seconds per epoch at its pace) of a run folder with a learning curve, else None."""
    run_dir = Path(run_dir)
    for file in ("metrics.json", "progress.json"):
        path = run_dir / file
        if path.is_file():
            try:
                record = json.loads(path.read_text())
                stored = record.get("config") or json.loads((run_dir / "config.json").read_text())["train"]
                config = TrainConfig.from_dict(stored)
            except (OSError, ValueError, KeyError, TypeError):
                return None
            pace = epoch_pace(record.get("history") or [])
            return (config, pace) if pace else None
    return None


def step_shape(config: TrainConfig) -> tuple:
    """What one training step's cost depends on: the model, k, the batch size and the step's kind."""
    return config.model_config(), config.k, config.batch_size, step_kind(config)


def cost_model(results_dir, benchmark_path, kinds_path=None) -> CostModel:
    """The cost model of this machine: the benchmark's fit, times the median ratio of
    measured to predicted training time over the step shapes of the runs in ``results_dir``.
    ``kinds_path``: the step kinds' measured costs (default: ``step_variants.json`` beside
    ``benchmark_path``).

    Runs that share a step shape (:func:`step_shape`) count once, at the fastest of them:
    a run that shared the machine with others from start to end is slow in every epoch,
    which :func:`epoch_pace` cannot see, while its twin trained alone shows the machine's pace.
    """
    a, c, e = fit_costs(load_benchmark(benchmark_path))
    kinds_path = Path(kinds_path) if kinds_path else Path(benchmark_path).with_name("step_variants.json")
    base = CostModel(a, c, e, 1.0, "", load_kind_ratios(kinds_path))
    fastest = {}
    folders = sorted(p for p in Path(results_dir).iterdir() if p.is_dir()) if Path(results_dir).is_dir() else []
    for folder in folders:
        found = measured_run(folder)
        if found:
            config, pace = found
            ratio = pace / (steps_per_epoch(config) * base.step_seconds(config))
            shape = step_shape(config)
            fastest[shape] = min(ratio, fastest.get(shape, ratio))
    ratios = list(fastest.values())
    factor = statistics.median(ratios) if ratios else 1.0
    source = "benchmarks/results.json" if Path(benchmark_path).is_file() else "the README's benchmark figures"
    basis = (f"{source} (steps/s at k=1, 5, 50, batch 20; k=5000 evaluation time), scaled by model size, "
             + (f"times {factor:.2f}, the median measured/benchmark ratio of the {len(ratios)} step shapes "
                "of the runs in results/ (each at its fastest run)"
                if ratios else "with no recorded run to calibrate against")
             + (f"; other step kinds at their measured cost ({kinds_path.name})" if base.kind_ratios else ""))
    return dataclasses.replace(base, factor=factor, basis=basis)


def evaluation_seconds(config: TrainConfig, costs: CostModel, epochs: int) -> float:
    """Held-out evaluations during ``epochs`` epochs plus the final evaluation, before the factor."""
    model = config.model_config()
    seconds = 0.0
    if config.eval_every:
        splits = 2 if config.validation_size else 1
        evaluations = epochs // config.eval_every + 1
        eval_k = getattr(config, "eval_k", None) or config.k
        seconds += evaluations * costs.eval_seconds(model, splits * config.eval_size, eval_k)
    test = config.final_test_size or TEST_IMAGES[config.dataset]
    final_images = test + config.final_train_size + (config.validation_size if config.validation_size else 0)
    return seconds + costs.eval_seconds(model, final_images, config.final_k)


def run_seconds(config: TrainConfig, costs: CostModel, epochs_done: int = 0,
                measured_epoch_seconds: float | None = None) -> float:
    """Estimated wall seconds to finish a run from ``epochs_done`` (its own measured
    seconds per epoch when given, else the cost model), including its evaluations."""
    remaining = max(0, config.total_epochs() - epochs_done)
    epoch = measured_epoch_seconds or costs.factor * steps_per_epoch(config) * costs.step_seconds(config)
    return remaining * epoch + costs.factor * evaluation_seconds(config, costs, remaining)


def format_hours(seconds: float) -> str:
    """``"3.2 h"``, or minutes below an hour (``"12 min"``), or ``"<1 min"``."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else "<1 min"
