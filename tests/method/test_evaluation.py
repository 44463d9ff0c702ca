"""evaluation.log_likelihood against the independent NumPy reference, and active_units."""

import math

import numpy as np
import pytest
from scipy.special import logsumexp

from iwae_lib import evaluation, models, numpy_reference
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()


def perturbed_params(config, seed, decoder_noise=0.3, encoder_scale=1.0, encoder_noise=0.3):
    """init_params with Gaussian noise on the decoder (so it is not the trivial initial
    model) and the encoder scaled and perturbed."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, value in models.init_params(config, seed=seed).items():
        noise = decoder_noise if name.startswith("dec") else encoder_noise
        scale = 1.0 if name.startswith("dec") else encoder_scale
        params[name] = (scale * value + noise * rng.standard_normal(value.shape)).astype(np.float32)
    return params


def images_from_model(params, config, n, seed):
    """n binary images drawn from the model itself, [n, x_size] float32."""
    probs, _ = models.sample_prior(params, config, n, np.array([seed, 0]))
    return (np.random.default_rng(seed).random(probs.shape) < probs.numpy()).astype(np.float32)


@pytest.fixture(scope="module")
def gentle():
    """A small model whose q is close enough to the posterior that a k=5000 estimate has
    a Monte Carlo standard error of ~0.015 nats per image at k=5000 (log w has a std of
    ~1.3 nats): the decoder is random, the
    encoder close to the prior (the posterior over 2 latents given 24 pixels is broad)."""
    config = models.ModelConfig((2,), ((12,),), x_size=24)
    params = perturbed_params(config, seed=1, decoder_noise=0.2, encoder_scale=0.2, encoder_noise=0.0)
    return config, params, images_from_model(params, config, 150, seed=2)


def standard_error_of_lk(params, config, x, k, seed=99):
    """Delta-method standard error of L_k = log mean w per image: std(w) / (sqrt(k) mean(w)),
    with the moments estimated from k fresh NumPy log-weights. [N]."""
    log_w = numpy_reference.log_weights_np(params, config.to_dict(), x, k, np.random.default_rng(seed))
    w = np.exp(log_w - log_w.max(axis=0))
    return w.std(axis=0) / (math.sqrt(k) * w.mean(axis=0))


def test_log_likelihood_agrees_with_numpy_reference(gentle):
    config, params, x = gentle
    k = 5000
    tf_estimate = evaluation.log_likelihood(params, config, x, k=k, seed=0, chunk_size=500, progress=False)
    np_estimate = numpy_reference.log_likelihood_np(params, config.to_dict(), x, k=k, seed=0, chunk=500)
    assert tf_estimate.shape == np_estimate.shape == (150,)
    # Both are L_5000 with independent draws: same expectation, so the difference of the
    # averages over 150 images is pure Monte Carlo noise with standard error
    # sqrt(2 sum_n se_n^2) / 150 (~0.0017 nats here). 0.01 nats is then > 4 standard
    # errors, while any real discrepancy (a missing term, a wrong log k) is far larger.
    se = standard_error_of_lk(params, config, x, k)
    se_of_mean_difference = math.sqrt(2 * np.sum(se**2)) / len(x)
    assert 4 * se_of_mean_difference < 0.01
    assert abs(np.mean(tf_estimate - np_estimate)) < 0.01
    # and image by image within 4.5 standard errors
    assert np.all(np.abs(tf_estimate - np_estimate) < 4.5 * math.sqrt(2) * se + 1e-4)


def test_batching_and_chunking_change_only_the_noise(gentle):
    config, params, x = gentle
    k = 1000  # 1000 = 7 * 130 + 90: the last chunk is a remainder
    reference = evaluation.log_likelihood(params, config, x, k=k, seed=0, batch_size=100, chunk_size=1000,
                                          progress=False)
    rechunked = evaluation.log_likelihood(params, config, x, k=k, seed=0, batch_size=30, chunk_size=130,
                                          progress=False)
    se = standard_error_of_lk(params, config, x, k)
    assert abs(np.mean(reference - rechunked)) < 4 * math.sqrt(2 * np.sum(se**2)) / len(x)
    # a dropped remainder chunk would lower every estimate by about log(1000 / 910) = 0.094
    assert 4 * math.sqrt(2 * np.sum(se**2)) / len(x) < 0.03
    # the estimate is a deterministic function of the seed
    again = evaluation.log_likelihood(params, config, x, k=k, seed=0, batch_size=30, chunk_size=130, progress=False)
    np.testing.assert_array_equal(rechunked, again)


def evaluation_noise(config, k, chunk_size, n_images, seed, batch_index=0):
    """The standard-normal noise evaluation.log_likelihood draws for one batch: chunk c
    uses seed fold_in([seed, batch], c) and, within it, layer i uses fold_in(that, i), as
    in models.log_weights. Returns L arrays [k, n_images, latent_i], chunks concatenated."""
    full, rest = divmod(k, chunk_size)
    sizes = [chunk_size] * full + ([rest] if rest else [])
    batch_seed = tf.constant([seed, batch_index], tf.int64)
    noise = [[] for _ in config.latent_sizes]
    for c, size in enumerate(sizes):
        chunk_seed = tf.random.experimental.stateless_fold_in(batch_seed, c)
        for i, n_latent in enumerate(config.latent_sizes, 1):
            layer_seed = tf.random.experimental.stateless_fold_in(chunk_seed, i)
            noise[i - 1].append(tf.random.stateless_normal([size, n_images, n_latent], seed=layer_seed).numpy())
    return [np.concatenate(parts).astype(np.float64) for parts in noise]


@pytest.mark.parametrize("latent_sizes, hidden_sizes", [((3,), ((10,),)), ((4, 2), ((10,), (6,)))])
def test_log_likelihood_matches_reference_on_the_same_noise(latent_sizes, hidden_sizes):
    """Regenerating evaluation's noise lets the float64 reference recompute the very same
    estimate: a tight check of the chunk combination, including a remainder chunk, on a
    model with a poor q (where independent draws would differ by whole nats)."""
    config = models.ModelConfig(latent_sizes, hidden_sizes, x_size=20)
    params = perturbed_params(config, seed=3)
    x = images_from_model(params, config, 4, seed=4)
    k, chunk = 250, 100
    estimate = evaluation.log_likelihood(params, config, x, k=k, seed=7, chunk_size=chunk, progress=False)
    noise = evaluation_noise(config, k, chunk, len(x), seed=7)
    log_w = numpy_reference.log_weights_from_noise_np(params, config.to_dict(), x, noise)
    reference = logsumexp(log_w, axis=0) - math.log(k)
    # float32 against float64: log-weights of up to hundreds of nats agree to ~1e-6 relative
    np.testing.assert_allclose(estimate, reference, atol=5e-4)
    assert np.std(log_w, axis=0).min() > 1.0  # the check is not trivial: weights vary a lot


def test_log_likelihood_rejects_bad_arguments(gentle):
    config, params, x = gentle
    for bad_k in (0, -5):
        with pytest.raises(ValueError, match="k must"):
            evaluation.log_likelihood(params, config, x, k=bad_k, progress=False)
    for bad_x in (x[:, :10], x[0], x[None]):
        with pytest.raises(ValueError, match="shape"):
            evaluation.log_likelihood(params, config, bad_x, k=10, progress=False)


@pytest.mark.parametrize("latent_sizes, hidden_sizes", [((6,), ((16,),)), ((6, 4), ((16,), (12,)))])
def test_active_units_finds_units_that_ignore_x(latent_sizes, hidden_sizes):
    config = models.ModelConfig(latent_sizes, hidden_sizes, x_size=30)
    params = perturbed_params(config, seed=5, encoder_scale=3.0)
    dead = {1: [0, 4], 2: [1]}  # units whose q-mean ignores the layer below
    for i in range(1, config.n_stochastic + 1):
        for unit in dead[i]:
            params[f"enc{i}/mean/w"][:, unit] = 0.0
    x = (np.random.default_rng(6).random((300, 30)) < 0.5).astype(np.float32)
    result = evaluation.active_units(params, config, x, n_samples=50, batch_size=128)
    assert len(result["variances"]) == len(result["active"]) == config.n_stochastic
    for i, variances in enumerate(result["variances"], 1):
        assert variances.shape == (latent_sizes[i - 1],)
        alive = [u for u in range(latent_sizes[i - 1]) if u not in dead[i]]
        assert np.all(variances[dead[i]] < 1e-10), (i, variances)
        assert np.all(variances[alive] > 0.05), (i, variances)
        assert result["active"][i - 1] == len(alive)


def test_active_units_threshold_counts():
    config = models.ModelConfig((3,), ((8,),), x_size=10)
    params = perturbed_params(config, seed=8)
    x = (np.random.default_rng(9).random((200, 10)) < 0.5).astype(np.float32)
    # E_q[h_1 | x] is the encoder mean exactly: compare with a direct computation
    mean, _ = models.encoder_layer(params, config, 1, x)
    expected = np.var(mean.numpy().astype(np.float64), axis=0)
    result = evaluation.active_units(params, config, x, threshold=float(np.median(expected)))
    np.testing.assert_allclose(result["variances"][0], expected, rtol=1e-5)
    assert result["active"] == [int(np.sum(expected > np.median(expected)))]
