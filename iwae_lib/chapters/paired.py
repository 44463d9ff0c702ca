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


# split -> the file of a run's per-image estimates (iwae_lib.run_dir.TEST_LL_FILE, VALID_LL_FILE)
PER_IMAGE_FILES = {"test": PER_IMAGE_FILE, "valid": "valid_log_likelihoods.npz"}
SPLIT_NAMES = {"test": "test", "valid": "validation"}


def per_image_log_likelihoods(record, split: str = "test") -> np.ndarray:
    """A run's per-image log-likelihood estimates [N] of ``split`` ("test" or "valid", the
    validation images of a run that held some out); record: a RunRecord."""
    path = record.run_dir / PER_IMAGE_FILES[split]
    if not path.is_file():
        fix = (f"run `python -m iwae_lib evaluate {record.run_dir} --record-per-image` to write it"
               if split == "test" else "runs recorded since the validation estimates were kept have it")
        raise FileNotFoundError(f"{path} is missing: {fix}")
    return checkpoints.load_arrays(path)["log_likelihood"]


def _images(record, split: str) -> tuple:
    metrics = record.metrics
    return metrics["config"]["dataset"], int(metrics[f"{split}_images"])


def nll_differences(records: dict, baseline: str, split: str = "test"):
    """NLL of each run on ``split`` ("test" or "valid") and its paired difference from the
    baseline's, as a DataFrame.

    records: row label -> RunRecord, all scored on the same images of ``split``.
    baseline: the label the others are compared with.
    Columns: "<split> NLL", "s.e.", "NLL - <baseline>", "s.e. (paired)" (nats; a negative
    difference: the run fits the images better than the baseline; 0 and 0 in the baseline's
    row), "<split>" being "test" or "validation".
    """
    import pandas as pd

    if baseline not in records:
        raise KeyError(f"baseline {baseline!r} is not one of {list(records)}")
    image_sets = {label: _images(r, split) for label, r in records.items()}
    if len(set(image_sets.values())) != 1:
        raise ValueError(f"the runs were scored on different {SPLIT_NAMES[split]} images: {image_sets}")
    base = per_image_log_likelihoods(records[baseline], split)
    rows = {}
    for label, record in records.items():
        # the baseline's row is its difference from itself: 0 and 0, exactly
        mean, se = paired_difference(base, per_image_log_likelihoods(record, split))
        rows[label] = {f"{SPLIT_NAMES[split]} NLL": -float(record.metrics[f"{split}_log_likelihood"]),
                       "s.e.": record.metrics.get(f"{split}_log_likelihood_stderr", math.nan),
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
