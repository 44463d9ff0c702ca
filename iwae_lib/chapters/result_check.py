"""Check a recorded run's test log-likelihood with the float64 NumPy reference, cheaply.

A finished run records, for each of its N test images, L_K(x) = log (1/K) sum_j w_j with
K = final_k samples (usually 5000), and their mean. This module draws K fresh samples for a
random subset of n test images, from ``weights.npz`` alone (:mod:`iwae_lib.numpy_reference`),
and compares. The recomputed L_K(x) and the recorded one are two draws of the same random
variable, so the comparison has no bias to correct. Fewer samples would have one:
E[L_k] rises with k, and for a trained model the rise is far slower than the c/k of the
delta method. Measured on 200 test images of ``mnist_1l_iwae_k5_fast``: L_250 extrapolated
to K = 5000 by c/k was still 0.42 +- 0.08 nats below the record, L_1000 0.26 +- 0.07 below,
and L_5000 agreed (0.07 +- 0.05). A check from fewer samples would fail good records.

Two comparisons, each with its standard error from the sample variance:

* per image, when the run wrote ``test_log_likelihoods.npz`` (training does; the evaluate
  command's ``--record-per-image`` writes it for older runs): d_i = ours(x_i) - recorded(x_i)
  for the n images has mean 0, se = sd(d) / sqrt(n);
* mean only: the recorded mean is over all N images, and log p(x) varies across images by
  tens of nats, so the subset's mean alone would say little. A control variate removes
  that spread: e(x) = L_c(x), c = ``control_k`` samples (20), for all N images, and

      M* = mean over all N of e  +  mean over the subset of g,   g = L_K - e,

  estimates the mean of E[L_K] over all N images (unbiased for a random subset). g varies
  little across images (the gap between two bounds), se = sd(g) / sqrt(n); this also
  covers the Monte Carlo noise of the first term (at most var(g) / N).

The check passes when |difference| <= Z * se, Z = 4: under a normal approximation a correct
record fails about once in 16000 checks.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from iwae_lib import checkpoints, numpy_reference

Z = 4.0
PER_IMAGE_FILE = "test_log_likelihoods.npz"  # = iwae_lib.training.TEST_LL_FILE


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """mode: "per image" or "mean"; n images, k samples per image (the record's K); difference:
    ours - recorded (nats); stderr: its standard error; passed: |difference| <= Z * stderr."""

    run: str
    mode: str
    n: int
    k: int
    difference: float
    stderr: float
    recorded_mean: float

    @property
    def passed(self) -> bool:
        return abs(self.difference) <= Z * self.stderr

    @property
    def message(self) -> str:
        verdict = "agrees with" if self.passed else "DISAGREES with"
        return (f"{self.run}: the NumPy reference ({self.n} test images, k={self.k}) "
                f"{verdict} the recorded test log-likelihood {self.recorded_mean:.3f} ({self.mode} comparison): "
                f"difference {self.difference:+.3f} nats, standard error {self.stderr:.3f}, "
                f"tolerance {Z:g} x s.e. = {Z * self.stderr:.3f}")


def reference_log_weights(weights: dict, model: dict, x, k: int, seed: int, chunk: int = 50) -> np.ndarray:
    """[k, n] float64 log-weights of the images x [n, x_size] from the NumPy reference."""
    rng = np.random.default_rng(seed)
    parts = [numpy_reference.log_weights_np(weights, model, x, min(chunk, k - done), rng)
             for done in range(0, k, chunk)]
    return np.concatenate(parts, axis=0)


def test_images(config) -> np.ndarray:
    """The test images of a run's final evaluation (as the model sees them), [N, x_size]."""
    x = _all_test_images(config.dataset, config.likelihood)
    return x if config.final_test_size is None else x[: config.final_test_size]


@functools.lru_cache(maxsize=2)
def _all_test_images(dataset: str, likelihood: str) -> np.ndarray:
    """A data set's whole test set as a likelihood reads it, [N, x_size] float64, read-only.
    Kept between calls: the test set depends on neither the validation split nor the seed
    (``data.load_dataset``), and many recorded runs share one."""
    from iwae_lib import data, likelihoods

    x = np.asarray(likelihoods.get(likelihood).data(data.load_dataset(dataset)).test, np.float64)
    x.flags.writeable = False
    return x


def check_run(run_dir, n_images: int = 40, control_k: int = 20, seed: int = 0, images=None) -> CheckResult:
    """Compare a finished run's recorded test log-likelihood with the NumPy reference.

    Args:
        run_dir: a folder with metrics.json and weights.npz (and, if written,
            test_log_likelihoods.npz).
        n_images: test images in the random subset, each with the recorded K samples.
        control_k: samples per image of the control variate (mean comparison only).
        seed: chooses the subset and the samples.
        images: the run's test images [N, x_size] (default: loaded as the run did).
    """
    from iwae_lib.config import TrainConfig

    run_dir = Path(run_dir)
    metrics = checkpoints.load_json(run_dir / "metrics.json")
    config = TrainConfig.from_dict(metrics["config"])
    model = metrics.get("model") or config.model_config().to_dict()
    x_all = test_images(config) if images is None else np.asarray(images, np.float64)
    recorded_k, total = int(metrics["final_k"]), int(metrics["test_images"])
    if len(x_all) != total:
        raise ValueError(f"{run_dir}: {len(x_all)} test images here, {total} in the record")
    rng = np.random.default_rng([seed, 1])
    subset = np.sort(rng.choice(total, size=min(n_images, total), replace=False))
    weights = numpy_reference.load_weights(run_dir / "weights.npz")
    ours = log_mean_weights(reference_log_weights(weights, model, x_all[subset], recorded_k, seed))
    n, mean = len(subset), float(metrics["test_log_likelihood"])
    per_image_path = run_dir / PER_IMAGE_FILE
    if per_image_path.is_file():
        recorded = checkpoints.load_arrays(per_image_path)["log_likelihood"]
        if len(recorded) != total or abs(float(np.mean(recorded)) - mean) > 1e-3:
            raise ValueError(f"{per_image_path} does not belong to the record in metrics.json "
                             f"({len(recorded)} images, mean {np.mean(recorded):.4f} vs {total}, {mean:.4f})")
        d = ours - recorded[subset]
        return CheckResult(run_dir.name, "per image", n, recorded_k, float(d.mean()),
                           float(d.std(ddof=1) / math.sqrt(n)), mean)
    control = control_variate(weights, model, x_all, control_k, seed)
    g = ours - control[subset]
    estimate = float(control.mean() + g.mean())
    return CheckResult(run_dir.name, "mean", n, recorded_k, estimate - mean,
                       float(g.std(ddof=1) / math.sqrt(n)), mean)


def log_mean_weights(log_w: np.ndarray) -> np.ndarray:
    """L_k = log of the mean of the k weights, from log-weights [k, n]: [n] float64."""
    log_w = np.asarray(log_w, np.float64)
    return logsumexp(log_w, axis=0) - math.log(log_w.shape[0])


def control_variate(weights: dict, model: dict, x, k: int, seed: int, batch: int = 500) -> np.ndarray:
    """L_k(x), the log of the mean of k importance weights, for every image of x [N, x_size]: [N]."""
    rng = np.random.default_rng([seed, 2])
    parts = [log_mean_weights(numpy_reference.log_weights_np(weights, model, x[start:start + batch], k, rng))
             for start in range(0, len(x), batch)]
    return np.concatenate(parts)


def finished_runs(results_dir) -> list:
    """Run folders under ``results_dir`` (one level, and snapshot segments one deeper) that
    hold metrics.json and weights.npz, sorted."""
    root = Path(results_dir)
    found = [p.parent for p in root.glob("*/metrics.json")] + [p.parent for p in root.glob("*/*/metrics.json")]
    return sorted(p for p in found if (p / "weights.npz").is_file())
