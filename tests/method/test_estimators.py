"""Statistical properties of the gradient estimators (standard, STL, DReG) for the IWAE bound.

Set-up: one image replicated R = 100 times in a batch. The estimators return the gradient
of -mean_B(bound), so one call gives the average of R independent single-image gradient
estimates; N calls with different seeds give N independent draws of that average, whose
sample mean and standard error (SE) are used below. The same seed gives the same noise
to every estimator, so differences between estimators are compared draw by draw (a
paired comparison, much less noisy than comparing two independent averages).

Under "same expectation", every coordinate's z = mean(diff) / SE(diff) is roughly
standard normal, so |z| > 4 should (almost) never happen; an aggregate check projects the
differences on a few fixed random directions and applies Hotelling's T^2 test.
"""

import math

import numpy as np
import pytest
from scipy import stats

from iwae_lib import estimators, models, posterior
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

REPLICAS, CALLS = 100, 200


def make_model(config, seed=0):
    """A random decoder and a small encoder (q close to the prior): q is imperfect, yet
    good enough that the importance weights are not degenerate."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, value in models.init_params(config, seed=seed).items():
        if name.startswith("dec"):
            params[name] = (value + 0.2 * rng.standard_normal(value.shape)).astype(np.float32)
        else:
            params[name] = (0.2 * value + 0.05 * rng.standard_normal(value.shape)).astype(np.float32)
    probs, _ = models.sample_prior(params, config, 1, np.array([5, 5]))
    x = (rng.random(probs.shape) < probs.numpy()).astype(np.float32)
    return params, x


class GradientSampler:
    """Draws of the (R-replica averaged) encoder and decoder gradients, memoised."""

    def __init__(self, config, seed=0):
        self.config = config
        params, self.x = make_model(config, seed)
        self.variables = models.as_variables(params)
        self.encoder = [n for n in self.variables if n.startswith("enc")]
        self.decoder = [n for n in self.variables if n.startswith("dec")]
        self._cache = {}

    def _flat(self, grads, names):
        return tf.concat([tf.reshape(grads[n], [-1]) for n in names], 0)

    def draws(self, k, estimator):
        """(encoder [CALLS, d_enc], decoder [CALLS, d_dec]) float64 gradient draws."""
        if (k, estimator) not in self._cache:
            batch = np.repeat(self.x, REPLICAS, axis=0)

            @tf.function
            def gradients(seed):
                _, grads = estimators.loss_and_gradients(self.variables, self.config, batch, k, seed, "iwae", estimator)
                return self._flat(grads, self.encoder), self._flat(grads, self.decoder)

            enc, dec = zip(*(gradients(tf.constant([s, k], tf.int64)) for s in range(CALLS)))
            self._cache[k, estimator] = (np.array(enc, np.float64), np.array(dec, np.float64))
        return self._cache[k, estimator]


@pytest.fixture(scope="module")
def one_layer():
    return GradientSampler(models.ModelConfig((3,), ((10,),), x_size=12))


@pytest.fixture(scope="module")
def two_layers():
    return GradientSampler(models.ModelConfig((3, 2), ((10,), (6,)), x_size=12))


def varying(*draws):
    """Mask of coordinates that vary across draws (rows of W for pixels that are 0 in the
    image get exactly zero gradient)."""
    return np.all([d.std(axis=0) > 0 for d in draws], axis=0)


def coordinate_z(diff):
    """Per-coordinate z-scores of the mean of paired differences [N, d]."""
    return diff.mean(axis=0) / (diff.std(axis=0, ddof=1) / math.sqrt(len(diff)))


def hotelling_p_value(diff, n_directions=5, seed=0):
    """p-value of Hotelling's T^2 test of 'mean zero' for diff [N, d] projected on a few
    fixed random unit directions."""
    directions = np.random.default_rng(seed).standard_normal((diff.shape[1], n_directions))
    projected = diff @ (directions / np.linalg.norm(directions, axis=0))
    n, m = projected.shape
    mean, cov = projected.mean(axis=0), np.cov(projected.T)
    t2 = n * mean @ np.linalg.solve(cov, mean)
    return stats.f.sf(t2 * (n - m) / (m * (n - 1)), m, n - m)


def split_half_z(diff):
    """z-score of the projection of the second half of the draws on the mean difference
    of the first half: a direction chosen without looking at the data it is tested on."""
    half = len(diff) // 2
    projected = diff[half:] @ diff[:half].mean(axis=0)
    return projected.mean() / (projected.std(ddof=1) / math.sqrt(len(projected)))


def assert_same_expectation(a, b):
    mask = varying(a, b)
    diff = (a - b)[:, mask]
    assert np.any(diff != 0)  # the estimators do differ draw by draw
    z = coordinate_z(diff)
    assert np.mean(np.abs(z) > 4) <= 0.01, np.sort(np.abs(z))[-5:]
    assert np.max(np.abs(z)) < 5.5
    assert hotelling_p_value(diff) > 1e-4
    assert abs(split_half_z(diff)) < 4


def test_encoder_gradient_has_signal(one_layer):
    """The expected encoder gradient is far from zero, so the comparisons below compare
    estimates of a non-trivial quantity."""
    enc, _ = one_layer.draws(10, "dreg")
    mask = varying(enc)
    assert np.median(np.abs(coordinate_z(enc[:, mask]))) > 5


def test_dreg_encoder_gradient_is_unbiased(one_layer):
    standard, _ = one_layer.draws(10, "standard")
    dreg, _ = one_layer.draws(10, "dreg")
    assert_same_expectation(dreg, standard)


def test_dreg_encoder_gradient_is_unbiased_with_two_stochastic_layers(two_layers):
    standard, _ = two_layers.draws(10, "standard")
    dreg, _ = two_layers.draws(10, "dreg")
    assert_same_expectation(dreg, standard)


def test_dreg_decoder_gradient_is_the_standard_one(one_layer):
    """The decoder part of DReG is the standard gradient itself: on the same noise the
    draws agree exactly, not only in expectation."""
    _, standard = one_layer.draws(10, "standard")
    _, dreg = one_layer.draws(10, "dreg")
    np.testing.assert_allclose(dreg, standard, rtol=1e-5, atol=1e-7 * np.abs(standard).max())


def test_stl_is_biased_for_k_above_one(one_layer):
    standard, _ = one_layer.draws(10, "standard")
    stl, _ = one_layer.draws(10, "stl")
    diff = (stl - standard)[:, varying(stl, standard)]
    assert split_half_z(diff) > 6
    assert hotelling_p_value(diff) < 1e-6


def test_stl_is_unbiased_for_one_sample(one_layer):
    standard, dec_standard = one_layer.draws(1, "standard")
    stl, dec_stl = one_layer.draws(1, "stl")
    assert_same_expectation(stl, standard)
    np.testing.assert_allclose(dec_stl, dec_standard, rtol=1e-5, atol=1e-7 * np.abs(dec_standard).max())


def test_dreg_has_lower_variance_and_higher_snr_at_k50(one_layer):
    standard, _ = one_layer.draws(50, "standard")
    dreg, _ = one_layer.draws(50, "dreg")
    mask = varying(standard, dreg)
    # per-sample variance is REPLICAS * the variance of the draws; the ratio is the same
    variance_ratio = dreg[:, mask].var(axis=0).sum() / standard[:, mask].var(axis=0).sum()
    assert variance_ratio < 0.1

    def snr(draws):
        return np.abs(draws.mean(axis=0)) / draws.std(axis=0)

    assert np.median(snr(dreg[:, mask])) > 5 * np.median(snr(standard[:, mask]))


def test_one_layer_weights_are_not_degenerate(one_layer):
    """The set-up the tests rely on: a reasonable proposal (ESS well above 1)."""
    log_w, _ = models.log_weights(one_layer.variables, one_layer.config, one_layer.x, 1000, np.array([1, 1]))
    assert posterior.effective_sample_size(log_w)[0] > 100


def test_check_estimator_rejects_bad_combinations():
    with pytest.raises(ValueError, match="IWAE bound only"):
        estimators.check_estimator("dreg", "vae")
    with pytest.raises(ValueError, match="unknown gradient estimator"):
        estimators.check_estimator("reinforce", "iwae")
    for estimator in estimators.ESTIMATORS:
        estimators.check_estimator(estimator, "iwae")  # all valid with IWAE
    config = models.ModelConfig((2,), ((3,),), x_size=4)
    variables = models.as_variables(models.init_params(config))
    with pytest.raises(ValueError, match="IWAE bound only"):
        estimators.loss_and_gradients(variables, config, np.zeros((1, 4), np.float32), 2, np.array([0, 0]),
                                      objective="miwae", estimator="dreg", miwae_groups=2)


@pytest.mark.parametrize("encoder_objective, estimator, options", [
    ("miwae", "standard", {"miwae_groups": 3}),
    ("miwae", "stl", {"miwae_groups": 2}),
    ("ciwae", "standard", {"ciwae_beta": 0.3}),
    ("vae", "stl", {}),
])
def test_piwae_gradient_is_iwae_for_the_decoder_and_the_encoder_bound_for_the_encoder(encoder_objective, estimator,
                                                                                      options):
    """On the same samples: PIWAE's decoder gradient is the IWAE bound's, its encoder
    gradient that of the encoder's bound with its estimator (two stochastic layers, so STL
    also holds the second layer's q parameters constant)."""
    config = models.ModelConfig((3, 2), ((10,), (6,)), x_size=12)
    params, x = make_model(config, seed=1)
    variables = models.as_variables(params)
    batch, seed = np.repeat(x, 4, axis=0), tf.constant([4, 2], tf.int64)
    bound, grads = estimators.loss_and_gradients(variables, config, batch, 6, seed, "piwae", estimator,
                                                 piwae_encoder=encoder_objective, **options)
    iwae, iwae_grads = estimators.loss_and_gradients(variables, config, batch, 6, seed, "iwae", "standard")
    _, encoder_grads = estimators.loss_and_gradients(variables, config, batch, 6, seed, encoder_objective, estimator,
                                                     **options)
    np.testing.assert_allclose(bound.numpy(), iwae.numpy(), rtol=1e-6)
    for name in params:
        expected = (encoder_grads if name.startswith("enc") else iwae_grads)[name].numpy()
        np.testing.assert_allclose(grads[name].numpy(), expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max(),
                                   err_msg=name)
    assert not np.allclose(grads["enc1/mean/w"].numpy(), iwae_grads["enc1/mean/w"].numpy())


def test_check_piwae_rejects_bad_encoder_bounds_and_estimators():
    with pytest.raises(ValueError, match="unknown PIWAE encoder objective 'iwae'"):
        estimators.check_piwae("iwae", "standard")
    with pytest.raises(ValueError, match="IWAE bound only"):
        estimators.check_piwae("miwae", "dreg")
    for encoder_objective in estimators.PIWAE_ENCODER_OBJECTIVES:
        estimators.check_piwae(encoder_objective, "stl")
