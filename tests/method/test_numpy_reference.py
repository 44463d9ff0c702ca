"""The NumPy reference evaluator against the TensorFlow models, on the same noise."""

import math

import numpy as np
import pytest
from scipy.special import logsumexp

from iwae_lib import checkpoints, models, numpy_reference


def perturbed_params(config, seed):
    """init_params plus noise on every array, so biases and log-stds are not all zero."""
    rng = np.random.default_rng(seed)
    params = models.init_params(config, seed=seed)
    return {n: (v + 0.3 * rng.standard_normal(v.shape)).astype(np.float32) for n, v in params.items()}


CONFIGS = {
    "one_layer": models.ModelConfig((4,), ((10, 8),), x_size=30),
    "two_layers": models.ModelConfig((6, 3), ((10,), (7, 5)), x_size=30),
}


def noise_from_samples(params, config, x, samples):
    """Recover the standard-normal noise behind models.log_weights' samples:
    eps_i = (h_i - mean_i) / std_i with mean_i, std_i of q(h_i | h_{i-1})."""
    noise, below = [], x
    for i, h in enumerate(samples, 1):
        mean, std = models.encoder_layer(params, config, i, below)
        noise.append(((h - mean) / std).numpy().astype(np.float64))
        below = h
    return noise


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_log_weights_match_tensorflow_on_the_same_noise(name):
    config = CONFIGS[name]
    params = perturbed_params(config, seed=1)
    x = (np.random.default_rng(2).random((5, config.x_size)) < 0.4).astype(np.float32)
    log_w_tf, samples = models.log_weights(params, config, x, 16, np.array([0, 7]))
    noise = noise_from_samples(params, config, x, samples)
    assert [e.shape for e in noise] == [(16, 5, n) for n in config.latent_sizes]
    # the recovered noise is standard normal (a check that the reconstruction is right)
    all_noise = np.concatenate([e.ravel() for e in noise])
    assert abs(all_noise.mean()) < 0.15 and abs(all_noise.std() - 1) < 0.15
    log_w_np = numpy_reference.log_weights_from_noise_np(params, config.to_dict(), x, noise)
    assert log_w_np.shape == (16, 5) and log_w_np.dtype == np.float64
    # float32 TF against float64 NumPy: relative agreement at the 1e-4 level
    np.testing.assert_allclose(log_w_tf.numpy(), log_w_np, rtol=1e-4, atol=1e-4 * np.abs(log_w_np).mean())


def test_densities_match_closed_forms():
    value = np.array([[0.3, -1.2]])
    mean, log_std = np.array([0.1, 0.5]), np.array([0.2, -0.4])
    std = np.exp(log_std)
    expected = sum(-0.5 * ((value[0, j] - mean[j]) / std[j]) ** 2 - math.log(std[j] * math.sqrt(2 * math.pi))
                   for j in range(2))
    np.testing.assert_allclose(numpy_reference.gaussian_log_density(value, mean, log_std), [expected])
    x, logits = np.array([[1.0, 0.0, 1.0]]), np.array([[2.0, -1.0, -30.0]])
    p = 1 / (1 + np.exp(-logits[0]))
    expected = math.log(p[0]) + math.log(1 - p[1]) + (-30.0 - math.log1p(math.exp(-30.0)))
    np.testing.assert_allclose(numpy_reference.bernoulli_log_density(x, logits), [expected], rtol=1e-12)


def test_log_likelihood_np_combines_chunks_exactly():
    """With the same generator stream, chunked and unchunked estimates are the same sum."""
    config = CONFIGS["two_layers"]
    weights = perturbed_params(config, seed=4)
    x = (np.random.default_rng(5).random((3, config.x_size)) < 0.5).astype(np.float32)
    log_w = numpy_reference.log_weights_np(weights, config.to_dict(), x, 30, np.random.default_rng(9))
    direct = logsumexp(log_w, axis=0) - math.log(30)
    # chunk=30 draws exactly the noise above; chunk=7 draws it in a different order
    np.testing.assert_allclose(numpy_reference.log_likelihood_np(weights, config.to_dict(), x, 30, 9, chunk=30),
                               direct, rtol=1e-12)
    chunked = numpy_reference.log_likelihood_np(weights, config.to_dict(), x, 30, 9, chunk=7)
    assert chunked.shape == (3,) and np.all(np.isfinite(chunked))
    with pytest.raises(ValueError, match="k must be"):
        numpy_reference.log_likelihood_np(weights, config.to_dict(), x, 0)


def test_weights_file_round_trip_and_clear_errors(tmp_path):
    config = CONFIGS["one_layer"]
    params = perturbed_params(config, seed=0)
    checkpoints.save_arrays(tmp_path / "weights.npz", params)
    weights = numpy_reference.load_weights(tmp_path / "weights.npz")
    assert set(weights) == set(params)
    assert all(np.array_equal(weights[n], params[n]) for n in params)
    x = np.zeros((2, config.x_size))
    log_w = numpy_reference.log_weights_np(weights, config.to_dict(), x, 3, 0)
    assert log_w.shape == (3, 2)
    del weights["enc1/mean/w"]
    with pytest.raises(ValueError, match="enc1/mean/w"):
        numpy_reference.log_weights_np(weights, config.to_dict(), x, 3, 0)
    with pytest.raises(ValueError, match="shape"):
        numpy_reference.log_weights_np(params, config.to_dict(), np.zeros((2, 5)), 3, 0)
    with pytest.raises(ValueError, match="latent_sizes"):
        numpy_reference.log_weights_np(params, {"hidden": [[3]]}, x, 3, 0)
