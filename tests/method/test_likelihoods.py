"""The discretised-logistic likelihood for 8-bit pixels and the model built on it."""

import math

import numpy as np
import pytest
from scipy.special import expit, log_expit

from iwae_lib import estimators, evaluation, likelihoods, models, quantized
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()
import tensorflow_probability as tfp  # noqa: E402

LEVELS = np.arange(256, dtype=np.float32)
CASES = [(0.3, -3.0), (0.0, -7.0), (1.2, 0.5), (0.5, 5.0), (-3.0, -6.0), (0.999, -5.5)]


@pytest.mark.parametrize("loc, log_scale", CASES)
def test_probabilities_over_the_256_levels_sum_to_one(loc, log_scale):
    log_p = likelihoods.discretized_logistic_log_prob(LEVELS, loc, log_scale).numpy().astype(np.float64)
    assert log_p.shape == (256,)
    assert np.all(log_p <= 1e-6)
    assert abs(np.logaddexp.reduce(log_p)) < 1e-5


@pytest.mark.parametrize("loc, log_scale", CASES)
def test_edge_bins_hold_the_tails(loc, log_scale):
    s = math.exp(max(log_scale, quantized.MIN_LOG_SCALE))
    half = 0.5 / 255
    log_p = likelihoods.discretized_logistic_log_prob(np.array([0.0, 255.0]), loc, log_scale).numpy()
    np.testing.assert_allclose(log_p[0], log_expit((half - loc) / s), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(log_p[1], log_expit(-(1 - half - loc) / s), rtol=1e-4, atol=1e-5)


def test_interior_bins_match_tfp_quantized_logistic():
    # TFP's QuantizedDistribution gives level v the mass of (v - 1, v]; ours is centred on v,
    # which is the same as a logistic shifted down by half a level on the 0..255 scale.
    loc, log_scale = 0.37, -3.5
    ours = likelihoods.discretized_logistic_log_prob(LEVELS, loc, log_scale).numpy()
    scale = math.exp(log_scale) * 255
    reference = tfp.distributions.QuantizedDistribution(
        tfp.distributions.Logistic(np.float64(loc * 255 - 0.5), np.float64(scale)), low=0.0, high=255.0)
    np.testing.assert_allclose(ours[1:-1], reference.log_prob(LEVELS[1:-1].astype(np.float64)).numpy(), atol=2e-4)


def test_log_prob_is_accurate_far_in_the_tails():
    # sigma(a) - sigma(b) computed naively underflows to 0 here; the stable form does not.
    log_p = likelihoods.discretized_logistic_log_prob(np.array([200.0]), 0.0, -5.0).numpy()[0]
    s, x = math.exp(-5.0), 200 / 255
    a, b = (x + 0.5 / 255) / s, (x - 0.5 / 255) / s
    # log sigma(a) + log sigma(-b) + log(1 - exp(b - a)), each term written for b >> 0
    exact = -math.log1p(math.exp(-a)) - (b + math.log1p(math.exp(-b))) + math.log1p(-math.exp(-(a - b)))
    assert math.isfinite(log_p)
    assert abs(log_p - exact) < 1e-3 * abs(exact)


def _closed_form_gradients(level, loc, log_scale):
    """d log P / d loc and d log P / d log_scale in float64, from a = (x + delta/2 - loc) / s
    and b = (x - delta/2 - loc) / s: log P is log sigma(a) for level 0, log sigma(-b) for 255
    and log(sigma(a) - sigma(b)) between, whose derivatives are written out below. A log-scale
    below MIN_LOG_SCALE is clipped, so its gradient is 0."""
    clipped = log_scale < quantized.MIN_LOG_SCALE
    s = math.exp(max(log_scale, quantized.MIN_LOG_SCALE))
    x, half = level / 255, 0.5 / 255
    a, b = (x + half - loc) / s, (x - half - loc) / s
    if level == 0:
        d_loc, d_log_scale = -expit(-a) / s, -a * expit(-a)
    elif level == 255:
        d_loc, d_log_scale = expit(b) / s, b * expit(b)
    else:
        d_loc = (expit(a) + expit(b) - 1) / s
        d_log_scale = -a * expit(-a) + b * expit(b) - (a - b) / math.expm1(a - b)
    return d_loc, 0.0 if clipped else d_log_scale


def test_gradients_match_the_closed_form_at_extreme_scales():
    # a huge scale, clipped tiny ones at the edge bins, an interior bin far in the tail
    levels = np.array([128.0, 0.0, 255.0, 3.0, 200.0])
    loc = tf.Variable([0.5, 0.0, 1.0, 0.2, 0.0])
    log_scale = tf.Variable([12.0, -9.0, -9.0, 0.0, -5.0])
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(likelihoods.discretized_logistic_log_prob(levels, loc, log_scale))
    d_loc, d_log_scale = (g.numpy() for g in tape.gradient(total, [loc, log_scale]))
    expected = np.array([_closed_form_gradients(v, mu, log_s)
                         for v, mu, log_s in zip(levels, loc.numpy().astype(float), log_scale.numpy().astype(float))])
    np.testing.assert_allclose(d_loc, expected[:, 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d_log_scale, expected[:, 1], rtol=1e-4, atol=1e-4)
    assert d_log_scale[1] == 0 and d_log_scale[2] == 0  # clipped: no gradient
    # far in the tail log P is nearly linear in the location, with slope 1 / s
    assert d_loc[4] == pytest.approx(math.exp(5.0), rel=1e-4)


def test_levels_conversion_and_errors():
    np.testing.assert_array_equal(likelihoods.to_levels([0.0, 1 / 255, 1.0]), [0.0, 1.0, 255.0])
    with pytest.raises(ValueError, match="0..255"):
        likelihoods.check_levels([0.5, 300.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        likelihoods.to_levels([1.5])


def test_bits_per_dim():
    assert likelihoods.bits_per_dim(np.array([-784 * math.log(2.0)] * 3)) == pytest.approx(1.0)
    assert likelihoods.bits_per_dim(np.array([-10.0]), x_size=5) == pytest.approx(2.0 / math.log(2.0))


SMALL = models.ModelConfig((3,), ((6,),), x_size=7)


def test_init_params_has_a_double_width_output_layer():
    params = quantized.init_params(SMALL, seed=0, train_mean=np.full(7, 0.2, np.float32), initial_scale=0.05)
    assert params["dec1/logits/w"].shape == (6, 14)
    np.testing.assert_allclose(params["dec1/logits/b"][:7], 0.2)
    np.testing.assert_allclose(params["dec1/logits/b"][7:], math.log(0.05), rtol=1e-6)
    assert set(params) == set(models.init_params(SMALL))
    with pytest.raises(ValueError, match="one stochastic layer"):
        quantized.init_params(models.paper_model(2))


def test_log_weights_match_a_direct_float64_computation():
    params = quantized.init_params(SMALL, seed=3)
    levels = np.array([[0, 255, 17, 128, 3, 250, 90], [5, 5, 5, 200, 0, 0, 255]], np.float32)
    log_w, (h,) = models.log_weights(params, quantized.as_model(SMALL), levels, k=4, seed=tf.constant([1, 2], tf.int64))
    assert log_w.shape == (4, 2) and h.shape == (4, 2, 3)
    h = h.numpy().astype(np.float64)
    p = {n: v.astype(np.float64) for n, v in params.items()}
    x = levels / 255.0
    hid = np.tanh(x @ p["enc1/hidden0/w"] + p["enc1/hidden0/b"])
    mean, log_std = hid @ p["enc1/mean/w"] + p["enc1/mean/b"], hid @ p["enc1/logstd/w"] + p["enc1/logstd/b"]
    log_q = np.sum(-0.5 * ((h - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi), -1)
    log_prior = np.sum(-0.5 * h**2 - 0.5 * math.log(2 * math.pi), -1)
    out = np.tanh(h @ p["dec1/hidden0/w"] + p["dec1/hidden0/b"]) @ p["dec1/logits/w"] + p["dec1/logits/b"]
    loc, s = out[..., :7], np.exp(out[..., 7:])
    cdf_hi = np.where(levels == 255, 1.0, expit((x + 0.5 / 255 - loc) / s))
    cdf_lo = np.where(levels == 0, 0.0, expit((x - 0.5 / 255 - loc) / s))
    expected = log_prior + np.sum(np.log(cdf_hi - cdf_lo), -1) - log_q
    np.testing.assert_allclose(log_w.numpy(), expected, rtol=1e-4, atol=1e-3)


def test_log_likelihood_estimate_rises_with_k_and_training_lowers_bits_per_dim():
    rng = np.random.default_rng(0)
    levels = np.round(rng.random((40, 7)) ** 3 * 255).astype(np.float32)
    params = quantized.init_params(SMALL, seed=0, train_mean=levels.mean(0) / 255)
    model = quantized.as_model(SMALL)

    def log_likelihood(weights, k):
        return evaluation.log_likelihood(weights, model, likelihoods.check_levels(levels), k=k, seed=0, progress=False)

    low_k, high_k = log_likelihood(params, 1), log_likelihood(params, 200)
    assert low_k.shape == (40,)
    assert high_k.mean() > low_k.mean()
    variables = models.as_variables(params)
    before = likelihoods.bits_per_dim(high_k, x_size=7)

    @tf.function
    def gradient_step(step):
        _, grads = estimators.loss_and_gradients(variables, model, levels, 5, tf.stack([tf.constant(0, tf.int64), step]))
        for name, g in grads.items():
            variables[name].assign_sub(0.01 * g)

    for step in range(150):
        gradient_step(tf.constant(step, tf.int64))
    trained = {n: v.numpy() for n, v in variables.items()}
    after = likelihoods.bits_per_dim(log_likelihood(trained, 200), x_size=7)
    assert after < before


def test_the_library_estimators_and_evaluation_take_the_8bit_model():
    """A discretized-logistic ModelConfig goes through models.log_weights, so every estimator
    applies: DReG's decoder gradient is the standard one on the same samples, and the
    evaluation's L_k equals the log-mean-exp of models.log_weights."""
    model = quantized.as_model(SMALL)
    assert model.likelihood == "discretized_logistic" and model.outputs_per_pixel == 2
    params = quantized.init_params(SMALL, seed=2)
    variables = models.as_variables(params)
    levels = np.array([[0, 255, 17, 128, 3, 250, 90], [5, 5, 5, 200, 0, 0, 255]], np.float32)
    seed = tf.constant([3, 1], tf.int64)
    _, standard = estimators.loss_and_gradients(variables, model, levels, 6, seed, "iwae", "standard")
    _, dreg = estimators.loss_and_gradients(variables, model, levels, 6, seed, "iwae", "dreg")
    assert all(np.all(np.isfinite(g.numpy())) for g in dreg.values())
    for name in params:
        if name.startswith("dec"):
            np.testing.assert_allclose(dreg[name].numpy(), standard[name].numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(dreg["enc1/mean/w"].numpy(), standard["enc1/mean/w"].numpy())
    estimate = evaluation.log_likelihood(params, model, levels, k=6, seed=0, chunk_size=6, progress=False)
    log_w, _ = models.log_weights(params, model, levels, 6,
                                  tf.random.experimental.stateless_fold_in(tf.constant([0, 0], tf.int64), 0))
    np.testing.assert_allclose(estimate, (tf.reduce_logsumexp(log_w, 0) - math.log(6)).numpy(), rtol=1e-6)


def test_bernoulli_only_helpers_refuse_the_8bit_model():
    model = quantized.as_model(SMALL)
    params = quantized.init_params(SMALL)
    with pytest.raises(ValueError, match="quantized.sample_images"):
        models.sample_prior(params, model, 2, np.array([0, 0]))
    with pytest.raises(ValueError, match="quantized.sample_images"):
        models.reconstruct(params, model, np.zeros((1, 7), np.float32))
