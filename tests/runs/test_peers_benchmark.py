"""benchmarks/peers.py: its iwae_lib side against its float64 NumPy model (no JAX or PyTorch needed)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from iwae_lib import models

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("peers_benchmark", REPO / "benchmarks" / "peers.py")
peers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peers)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    grey = rng.uniform(0.05, 0.95, size=(peers.BATCH, 784)).astype(np.float32)
    params = peers.check_params(models.init_params(models.paper_model(1), 0, grey.mean(0)))
    x = (rng.uniform(size=grey.shape) < grey).astype(np.float32)
    return params, x


@pytest.mark.parametrize("k", [1, 5])
def test_iwae_lib_bound_matches_the_float64_model_with_its_own_noise(inputs, k):
    params, x = inputs
    bound, grads, eps = peers.iwae_lib_check(params, x, k)
    assert eps.shape == (k, peers.BATCH, peers.LATENT)
    reference = peers.numpy_bound(params, x, eps)
    assert np.max(np.abs(bound - reference) / np.abs(reference)) <= peers.BOUND_RTOL
    assert set(grads) == set(params) and all(grads[n].shape == params[n].shape for n in params)


def test_iwae_lib_adam_matches_the_float64_update(inputs):
    params, x = inputs
    _, grads, _ = peers.iwae_lib_check(params, x, 5)
    sequence = peers.adam_gradients(grads)
    expected = peers.numpy_adam(params, sequence)
    got = peers.iwae_lib_adam(params, sequence)
    for n in params:
        assert np.max(np.abs(got[n] - expected[n]) / np.maximum(np.abs(expected[n]), 1.0)) <= peers.ADAM_TOL
    assert any(np.max(np.abs(got[n] - params[n])) > 1e-4 for n in params)  # the updates did something


def test_iwae_lib_trainer_runs_and_summary_ratios(inputs):
    params, _ = inputs
    batches = np.random.default_rng(1).uniform(size=(2, peers.BATCH, 784)).astype(np.float32)
    call = peers.iwae_lib_trainer(params, batches, 1)
    assert np.isfinite(call(0)) and call(0) < 0
    timing = peers.time_calls(lambda first: -1.0, 0.0)
    assert timing["steps"] == peers.STEPS_PER_CALL and timing["steps_per_s"] > 0
    rounds = [{fw: {"k": {"1": {"steps_per_s": s, "warmup_s": 1.0}}} for fw, s in (("iwae_lib", a), ("jax", b))}
              for a, b in ((100.0, 150.0), (110.0, 120.0), (90.0, 200.0))]
    summary = peers.summarise(rounds, ["iwae_lib", "jax"], [1])
    assert summary["median_steps_per_s"]["jax"]["1"] == 150.0
    assert summary["ratio_to_iwae_lib"]["jax"]["1"] == pytest.approx(1.5)
