"""The bounds of iwae_lib.objectives on a model whose log p(x) is known exactly.

Linear-Gaussian model: p(h) = N(0, I), p(x | h) = N(W h + b, s^2 I), so
p(x) = N(b, W W^T + s^2 I) and p(h | x) = N(mu, S) with S = (I + W^T W / s^2)^-1,
mu = S W^T (x - b) / s^2. The proposal q(h | x) is deliberately imperfect: a diagonal
Gaussian with the posterior's marginal variances inflated and a shifted mean. Log-weights
are computed in float64 NumPy and handed to the bound functions.

Statistical claims are checked with tolerances derived from the standard errors of the
averages (fixed seeds make every test deterministic).
"""

import math

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from iwae_lib import objectives
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

LATENT, OBSERVED, NOISE_STD = 4, 6, 0.7


class LinearGaussian:
    """Parameters, exact log p(x) and exact posterior for one observation x."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.W = rng.standard_normal((OBSERVED, LATENT))
        self.b = rng.standard_normal(OBSERVED)
        self.x = rng.standard_normal(OBSERVED)
        marginal_cov = self.W @ self.W.T + NOISE_STD**2 * np.eye(OBSERVED)
        self.log_px = multivariate_normal(self.b, marginal_cov).logpdf(self.x)
        self.post_cov = np.linalg.inv(np.eye(LATENT) + self.W.T @ self.W / NOISE_STD**2)
        self.post_mean = self.post_cov @ self.W.T @ (self.x - self.b) / NOISE_STD**2
        post_std = np.sqrt(np.diag(self.post_cov))
        self.q_mean = self.post_mean + 0.3 * post_std  # imperfect q: shifted ...
        self.q_std = 1.5 * post_std  # ... wider, and ignoring the posterior correlations

    def log_joint(self, h):
        """log p(x, h) for h [..., LATENT]."""
        log_prior = np.sum(-0.5 * h**2 - 0.5 * math.log(2 * math.pi), -1)
        z = (self.x - (h @ self.W.T + self.b)) / NOISE_STD
        return log_prior + np.sum(-0.5 * z**2 - math.log(NOISE_STD) - 0.5 * math.log(2 * math.pi), -1)

    def log_weights(self, k, repeats, seed):
        """[k, repeats] log-weights under the imperfect q: column j gives one draw of L_k."""
        eps = np.random.default_rng(seed).standard_normal((k, repeats, LATENT))
        h = self.q_mean + self.q_std * eps
        log_q = np.sum(-0.5 * eps**2 - np.log(self.q_std) - 0.5 * math.log(2 * math.pi), -1)
        return self.log_joint(h) - log_q


@pytest.fixture(scope="module")
def model():
    return LinearGaussian()


def iwae_draws(model, k, repeats, seed, block=1000):
    """repeats independent draws of L_k, computed ``block`` draws at a time (memory)."""
    return np.concatenate([
        objectives.iwae_bound(tf.constant(model.log_weights(k, min(block, repeats - start), (seed, start)))).numpy()
        for start in range(0, repeats, block)
    ])


def mean_and_se(values):
    return values.mean(), values.std(ddof=1) / math.sqrt(len(values))


@pytest.fixture(scope="module")
def bound_averages(model):
    """mean and standard error of L_k over independent draws, for k = 1, 5, 50, 500.
    Repeats are chosen so the gap to log p(x) (~ Var(w/p(x)) / 2k) is several SEs."""
    repeats = {1: 20000, 5: 8000, 50: 8000, 500: 8000}
    return {k: mean_and_se(iwae_draws(model, k, r, seed=k)) for k, r in repeats.items()}


def test_iwae_bound_is_below_log_px(model, bound_averages):
    for k, (mean, se) in bound_averages.items():
        assert mean + 3 * se < model.log_px, (k, mean, se, model.log_px)


def test_iwae_bound_increases_with_k(bound_averages):
    ks = sorted(bound_averages)
    for small, large in zip(ks, ks[1:]):
        (m_small, se_small), (m_large, se_large) = bound_averages[small], bound_averages[large]
        assert m_large - m_small > 3 * math.hypot(se_small, se_large), (small, large)


def test_iwae_bound_approaches_log_px_at_large_k(model):
    mean, se = mean_and_se(iwae_draws(model, 5000, 400, seed=5000))
    # The bias is about Var(w / p(x)) / (2k) ~ 3e-4 nats here and the SE about 1e-3,
    # so 0.01 nats is a loose but meaningful tolerance (the gap at k=1 is ~3 nats).
    assert se < 0.003
    assert abs(mean - model.log_px) < 0.01


def test_one_sample_iwae_equals_elbo(model):
    log_w = tf.constant(model.log_weights(1, 50, seed=1))
    np.testing.assert_array_equal(objectives.iwae_bound(log_w).numpy(), objectives.vae_bound(log_w).numpy())
    np.testing.assert_allclose(objectives.vae_bound(log_w).numpy(), log_w.numpy()[0], rtol=1e-15)


def test_vae_bound_is_below_iwae_bound_for_every_draw(model):
    """Jensen's inequality for each draw: mean log w <= log mean w."""
    log_w = tf.constant(model.log_weights(20, 500, seed=2))
    assert np.all(objectives.vae_bound(log_w).numpy() <= objectives.iwae_bound(log_w).numpy() + 1e-12)


def test_exact_posterior_gives_zero_variance_weights(model):
    eps = np.random.default_rng(3).standard_normal((50, 4, LATENT))
    h = model.post_mean + eps @ np.linalg.cholesky(model.post_cov).T
    log_q = multivariate_normal(model.post_mean, model.post_cov).logpdf(h)
    log_w = tf.constant(model.log_joint(h) - log_q)
    np.testing.assert_allclose(log_w.numpy(), model.log_px, atol=1e-9)
    for bound in (objectives.iwae_bound, objectives.vae_bound):
        np.testing.assert_allclose(bound(log_w).numpy(), model.log_px, atol=1e-9)


def test_iwae_bound_is_stable_in_float32():
    rng = np.random.default_rng(4)
    for offset in (-1e4, 100.0):
        log_w64 = offset + 3.0 * rng.standard_normal((100, 8))
        log_w32 = tf.constant(log_w64, tf.float32)
        naive = tf.math.log(tf.reduce_mean(tf.exp(log_w32), axis=0)).numpy()
        assert not np.all(np.isfinite(naive))  # the textbook formula under/overflows here
        bound = objectives.iwae_bound(log_w32).numpy()
        assert bound.dtype == np.float32 and np.all(np.isfinite(bound))
        reference = logsumexp(log_w64, axis=0) - math.log(100)
        # float32 spacing near 1e4 is ~1e-3; the inputs are rounded to it
        np.testing.assert_allclose(bound, reference, atol=5e-3)


def test_miwae_extremes_and_grouping():
    log_w = tf.constant(np.random.default_rng(5).normal(-50.0, 2.0, (12, 3)))
    iwae, vae = objectives.iwae_bound(log_w).numpy(), objectives.vae_bound(log_w).numpy()
    np.testing.assert_allclose(objectives.miwae_bound(log_w, 1).numpy(), iwae, rtol=1e-13)
    np.testing.assert_allclose(objectives.miwae_bound(log_w, 12).numpy(), vae, rtol=1e-13)
    # 3 groups of 4 consecutive samples: the mean of the three 4-sample IWAE bounds
    values = log_w.numpy()
    by_hand = np.mean([logsumexp(values[4 * g:4 * g + 4], axis=0) - math.log(4) for g in range(3)], axis=0)
    middle = objectives.miwae_bound(log_w, 3).numpy()
    np.testing.assert_allclose(middle, by_hand, rtol=1e-13)
    assert np.all(vae <= middle) and np.all(middle <= iwae)
    with pytest.raises(ValueError, match="divisible"):
        objectives.miwae_bound(log_w, 5)


def test_ciwae_interpolates_between_vae_and_iwae():
    log_w = tf.constant(np.random.default_rng(6).normal(-50.0, 2.0, (10, 4)))
    iwae, vae = objectives.iwae_bound(log_w).numpy(), objectives.vae_bound(log_w).numpy()
    np.testing.assert_allclose(objectives.ciwae_bound(log_w, 0.0).numpy(), iwae, rtol=1e-13)
    np.testing.assert_allclose(objectives.ciwae_bound(log_w, 1.0).numpy(), vae, rtol=1e-13)
    mixed = objectives.ciwae_bound(log_w, 0.3).numpy()
    np.testing.assert_allclose(mixed, 0.3 * vae + 0.7 * iwae, rtol=1e-13)
    assert np.all((vae < mixed) & (mixed < iwae))


def test_normalized_weights_and_bound_fn():
    log_w = tf.constant(np.random.default_rng(7).normal(-1e3, 5.0, (6, 3)), tf.float32)
    weights = objectives.normalized_weights(log_w).numpy()
    np.testing.assert_allclose(weights.sum(0), 1.0, rtol=1e-6)
    values = log_w.numpy().astype(np.float64)
    np.testing.assert_allclose(weights, np.exp(values - logsumexp(values, axis=0)), rtol=1e-4, atol=1e-7)
    assert objectives.bound_fn("iwae") is objectives.iwae_bound
    assert objectives.bound_fn("vae") is objectives.vae_bound
    np.testing.assert_allclose(objectives.bound_fn("miwae", miwae_groups=2)(log_w).numpy(),
                               objectives.miwae_bound(log_w, 2).numpy())
    with pytest.raises(ValueError, match="beta"):
        objectives.bound_fn("ciwae", ciwae_beta=1.5)
    with pytest.raises(ValueError, match="unknown objective"):
        objectives.bound_fn("elbo")
