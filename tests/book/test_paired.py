"""Paired comparisons of runs on the same test images (iwae_lib/chapters/paired.py)."""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from iwae_lib import chapters, checkpoints
from iwae_lib.chapters import paired

REPO = Path(__file__).resolve().parents[2]


def test_paired_difference_removes_the_spread_common_to_both_runs():
    rng = np.random.default_rng(0)
    difficulty = rng.normal(-90.0, 25.0, size=10000)  # log p(x) varies by tens of nats across images
    a = difficulty + 0.3 + rng.normal(0.0, 0.5, size=10000)
    b = difficulty + rng.normal(0.0, 0.5, size=10000)
    mean, se = paired.paired_difference(a, b)
    # closed form: d = 0.3 + N(0, 0.5^2 + 0.5^2), so se = sqrt(0.5) / sqrt(10000) = 0.00707
    assert se == pytest.approx(math.sqrt(0.5 / 10000), rel=0.03)
    assert abs(mean - 0.3) < 4 * se
    unpaired_se = math.sqrt(a.var(ddof=1) / 10000 + b.var(ddof=1) / 10000)
    assert unpaired_se > 40 * se  # about 0.35 nats: a 0.3-nat difference it could not resolve


def test_paired_difference_values_and_errors():
    mean, se = paired.paired_difference([1.0, 2.0, 4.0], [0.0, 0.0, 0.0])
    assert mean == pytest.approx(7 / 3)
    assert se == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1) / math.sqrt(3))
    with pytest.raises(ValueError, match="same length"):
        paired.paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="same length"):
        paired.paired_difference([1.0], [2.0])


def _fake_run(folder: Path, name: str, per_image, dataset="mnist"):
    run_dir = folder / name
    run_dir.mkdir()
    per_image = np.asarray(per_image, np.float64)
    checkpoints.save_arrays(run_dir / paired.PER_IMAGE_FILE, {"log_likelihood": per_image})
    metrics = {"config": {"dataset": dataset}, "test_images": len(per_image),
               "test_log_likelihood": float(per_image.mean()),
               "test_log_likelihood_stderr": float(per_image.std(ddof=1) / math.sqrt(len(per_image)))}
    return SimpleNamespace(name=name, metrics=metrics, run_dir=run_dir,
                           test_log_likelihood=metrics["test_log_likelihood"])


def test_nll_differences_table(tmp_path):
    runs = {"IWAE": _fake_run(tmp_path, "a", [-80.0, -100.0, -90.0]),
            "VAE": _fake_run(tmp_path, "b", [-81.0, -100.5, -91.0])}
    table = paired.nll_differences(runs, "IWAE")
    assert list(table.columns) == ["test NLL", "s.e.", "NLL - IWAE", "s.e. (paired)"]
    assert table.loc["VAE", "test NLL"] == pytest.approx(272.5 / 3)
    assert table.loc["VAE", "NLL - IWAE"] == pytest.approx(2.5 / 3)  # the VAE fits each image worse
    assert table.loc["VAE", "s.e. (paired)"] == pytest.approx(np.std([1.0, 0.5, 1.0], ddof=1) / math.sqrt(3))
    assert table.loc["IWAE", ["NLL - IWAE", "s.e. (paired)"]].tolist() == [0.0, 0.0]
    with pytest.raises(KeyError, match="baseline"):
        paired.nll_differences(runs, "DReG")


def test_nll_differences_refuse_runs_on_different_test_images(tmp_path):
    runs = {"mnist": _fake_run(tmp_path, "a", [-80.0, -90.0]),
            "static": _fake_run(tmp_path, "b", [-81.0, -91.0], dataset="binarized_mnist")}
    with pytest.raises(ValueError, match="different test images"):
        paired.nll_differences(runs, "mnist")
    missing = SimpleNamespace(run_dir=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="record-per-image"):
        paired.per_image_log_likelihoods(missing)


ESTIMATOR_RUNS = ("mnist_1l_iwae_k5", "mnist_1l_iwae_k5_dreg")


@pytest.mark.skipif(not all((REPO / "results" / n / paired.PER_IMAGE_FILE).is_file() for n in ESTIMATOR_RUNS),
                    reason="chapter 5's recorded runs are not in results/")
def test_paired_difference_of_recorded_runs_matches_their_means():
    """The mean paired difference of two recorded runs is the difference of their recorded means,
    and its standard error is well below the unpaired one."""
    records = {n: chapters.load_run(n, REPO / "results") for n in ESTIMATOR_RUNS}
    table = paired.nll_differences(records, ESTIMATOR_RUNS[0])
    other = ESTIMATOR_RUNS[1]
    recorded = records[ESTIMATOR_RUNS[0]].test_log_likelihood - records[other].test_log_likelihood
    assert table.loc[other, f"NLL - {ESTIMATOR_RUNS[0]}"] == pytest.approx(recorded, abs=1e-5)  # float32 sums in the records
    assert table.loc[other, "s.e. (paired)"] < 0.5 * table.loc[other, "s.e."]


def test_describe_says_which_differences_exceed_two_standard_errors():
    import pandas as pd

    table = pd.DataFrame({"NLL - IWAE": [0.0, -0.5, 0.05, 0.3], "s.e. (paired)": [0.0, 0.1, 0.1, 0.1]},
                         index=["IWAE", "A", "B", "C"])
    lines = paired.describe(table, "IWAE")
    assert lines == ["A: NLL -0.500 ± 0.100 nats, fits the test images better than IWAE",
                     "B: NLL +0.050 ± 0.100 nats, within 2 standard errors of IWAE",
                     "C: NLL +0.300 ± 0.100 nats, fits the test images worse than IWAE"]


def test_nll_differences_on_validation_images(tmp_path):
    """split="valid" pairs the runs' per-image validation estimates (valid_log_likelihoods.npz),
    the ones recipes are chosen on."""
    from iwae_lib import run_dir as run_files

    assert paired.PER_IMAGE_FILES == {"test": run_files.TEST_LL_FILE, "valid": run_files.VALID_LL_FILE}
    runs = {}
    for label, name, values in (("fast", "a", [-80.0, -100.0, -90.0]), ("DReG", "b", [-79.0, -99.0, -90.5])):
        record = _fake_run(tmp_path, name, [-1.0, -2.0])
        checkpoints.save_arrays(record.run_dir / paired.PER_IMAGE_FILES["valid"], {"log_likelihood": np.array(values)})
        record.metrics.update(valid_images=3, valid_log_likelihood=float(np.mean(values)),
                              valid_log_likelihood_stderr=0.5)
        runs[label] = record
    table = paired.nll_differences(runs, "fast", split="valid")
    assert list(table.columns) == ["validation NLL", "s.e.", "NLL - fast", "s.e. (paired)"]
    assert table.loc["DReG", "NLL - fast"] == pytest.approx(-1.5 / 3)
    assert table.loc["DReG", "s.e. (paired)"] == pytest.approx(np.std([-1.0, -1.0, 0.5], ddof=1) / math.sqrt(3))
    runs["DReG"].metrics["valid_images"] = 4
    with pytest.raises(ValueError, match="different validation images"):
        paired.nll_differences(runs, "fast", split="valid")
    (runs["fast"].run_dir / paired.PER_IMAGE_FILES["valid"]).unlink()
    with pytest.raises(FileNotFoundError, match="valid_log_likelihoods.npz is missing"):
        paired.nll_differences({"fast": runs["fast"]}, "fast", split="valid")
