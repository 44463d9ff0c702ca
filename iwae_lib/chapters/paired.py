"""Compare runs on the same test images, image by image.

Two runs scored on the same N test images each record L(x_i), i = 1..N
(``test_log_likelihoods.npz``). Their means carry standard errors of about 0.23 nats on
MNIST, mostly because log p(x) differs from image to image by tens of nats; that spread is
common to both runs. The paired difference

    d_i = L_a(x_i) - L_b(x_i),   mean d,   se = sd(d) / sqrt(N)

removes it, so a difference of a few tenths of a nat that two overlapping +-0.23 intervals
leave undecided can be resolved. The standard error covers the choice of test images and
the Monte Carlo noise of each estimate (both vary from image to image); it does not cover
training noise: a second seed of the same run would move its number too.
"""

from __future__ import annotations

import math

import numpy as np

from iwae_lib import checkpoints
from iwae_lib.chapters.result_check import PER_IMAGE_FILE


def paired_difference(a, b) -> tuple:
    """Mean and standard error of a - b, for per-image values a, b [N] of the same images."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"paired values need two 1-D arrays of the same length >= 2, got shapes {a.shape} and {b.shape}")
    d = a - b
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def per_image_test_log_likelihoods(record) -> np.ndarray:
    """A run's per-image test log-likelihood estimates [N] (record: a RunRecord)."""
    path = record.run_dir / PER_IMAGE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m iwae_lib evaluate {record.run_dir} "
                                f"--record-per-image` to write it")
    return checkpoints.load_arrays(path)["log_likelihood"]


def _test_set(record) -> tuple:
    metrics = record.metrics
    return metrics["config"]["dataset"], int(metrics["test_images"])


def nll_differences(records: dict, baseline: str):
    """Test NLL of each run and its paired difference from the baseline's, as a DataFrame.

    records: row label -> RunRecord, all scored on the same test images.
    baseline: the label the others are compared with.
    Columns: "test NLL", "s.e.", "NLL - <baseline>", "s.e. (paired)" (nats; a negative
    difference: the run fits the test images better than the baseline).
    """
    import pandas as pd

    if baseline not in records:
        raise KeyError(f"baseline {baseline!r} is not one of {list(records)}")
    test_sets = {label: _test_set(r) for label, r in records.items()}
    if len(set(test_sets.values())) != 1:
        raise ValueError(f"the runs were scored on different test images: {test_sets}")
    base = per_image_test_log_likelihoods(records[baseline])
    rows = {}
    for label, record in records.items():
        mean, se = (math.nan, math.nan) if label == baseline else paired_difference(
            base, per_image_test_log_likelihoods(record))
        rows[label] = {"test NLL": -record.test_log_likelihood,
                       "s.e.": record.metrics.get("test_log_likelihood_stderr", math.nan),
                       f"NLL - {baseline}": mean, "s.e. (paired)": se}
    return pd.DataFrame.from_dict(rows, orient="index")


def describe(table, baseline: str, z: float = 2.0) -> list:
    """One sentence per non-baseline row of :func:`nll_differences`'s table: its difference
    from the baseline and whether it lies beyond z paired standard errors."""
    lines = []
    for label, row in table.drop(index=baseline).iterrows():
        difference, stderr = row[f"NLL - {baseline}"], row["s.e. (paired)"]
        if difference < -z * stderr:
            verdict = f"fits the test images better than {baseline}"
        elif difference > z * stderr:
            verdict = f"fits the test images worse than {baseline}"
        else:
            verdict = f"within {z:g} standard errors of {baseline}"
        lines.append(f"{label}: NLL {difference:+.3f} ± {stderr:.3f} nats, {verdict}")
    return lines
