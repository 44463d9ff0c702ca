"""Posterior tools: importance-sampling estimates against the exact posterior on a grid.

The model has a 2-D latent (ModelConfig(latent_sizes=(2,), hidden_sizes=((20,),))) and a
random decoder, so p(h | x) on a fine grid is exact up to the grid. The encoder's output
layer is then solved (least squares on its hidden activations) so that q(h | x) is a
diagonal Gaussian with the posterior's mean shifted by 0.3 marginal std and the marginal
std inflated by 1.3 for the test images: a reasonable but imperfect proposal, which the
importance weights have to correct.
"""


import numpy as np
import pytest

from iwae_lib import evaluation, models, posterior
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

CONFIG = models.ModelConfig(latent_sizes=(2,), hidden_sizes=((20,),))
SHIFT, WIDEN = 0.3, 1.3


def _encoder_hidden(params, x):
    return np.tanh(x @ params["enc1/hidden0/w"] + params["enc1/hidden0/b"]).astype(np.float64)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    params = models.init_params(CONFIG, seed=0)
    params = {n: (v + 0.1 * rng.standard_normal(v.shape)).astype(np.float32) if n.startswith("dec") else v
              for n, v in params.items()}
    probs, _ = models.sample_prior(params, CONFIG, 4, np.array([1, 2]))
    x = (rng.random(probs.shape) < probs.numpy()).astype(np.float32)
    grid, area = posterior.latent_grid(limit=4.0, n=200)
    log_joint = posterior.log_joint_on_grid(params, CONFIG, x, grid)
    post = posterior.grid_posterior(log_joint)
    mean, cov = posterior.grid_posterior_moments(post, grid)
    # solve the encoder's output layers so q's mean/std hit their targets on these images
    std = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    hidden = _encoder_hidden(params, x)  # [4, 20]: 4 equations, 20 unknowns per output
    for name, target in (("mean", mean + SHIFT * std), ("logstd", np.log(WIDEN * std))):
        params[f"enc1/{name}/w"] = np.linalg.lstsq(hidden, target, rcond=None)[0].astype(np.float32)
        params[f"enc1/{name}/b"] = np.zeros(2, np.float32)
    return dict(params=params, x=x, grid=grid, area=area, log_joint=log_joint, post=post, mean=mean, cov=cov)


def test_encoder_fixture_gives_the_intended_proposal(setup):
    q_mean, q_std = models.encoder_layer(setup["params"], CONFIG, 1, setup["x"])
    std = np.sqrt(np.diagonal(setup["cov"], axis1=1, axis2=2))
    np.testing.assert_allclose(q_mean.numpy(), setup["mean"] + SHIFT * std, atol=1e-3)
    np.testing.assert_allclose(q_std.numpy(), WIDEN * std, rtol=1e-3)


def test_snis_weights_sum_to_one_and_effective_sample_size_limits():
    log_w = np.random.default_rng(1).normal(-1e4, 3.0, (50, 6))
    for values in (log_w, tf.constant(log_w, tf.float32)):
        weights = posterior.snis_weights(values)
        assert weights.shape == (50, 6) and np.all(weights >= 0)
        np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(posterior.effective_sample_size(np.zeros((50, 2))), 50.0)
    one_dominant = np.full((50, 1), -1e3)
    one_dominant[7] = 0.0
    np.testing.assert_allclose(posterior.effective_sample_size(one_dominant), 1.0)
    ess = posterior.effective_sample_size(log_w)
    assert np.all((1 <= ess) & (ess <= 50))


def test_snis_mean_is_the_weighted_average():
    log_w = np.log(np.array([[1.0], [3.0]]))
    samples = np.array([[[0.0, 4.0]], [[2.0, 0.0]]])  # [k=2, B=1, d=2]
    np.testing.assert_allclose(posterior.snis_mean(log_w, samples), [[1.5, 1.0]])
    with pytest.raises(ValueError, match="samples must have shape"):
        posterior.snis_mean(log_w, samples[:, :, 0])


def test_sir_draws_in_proportion_to_the_weights():
    probabilities = np.array([0.1, 0.2, 0.3, 0.4])
    samples = np.arange(4.0)[:, None, None] * np.ones((4, 3, 1))  # sample i has value i, 3 images
    draws = posterior.sir(np.log(probabilities)[:, None] * np.ones((4, 3)), samples, n=20000, seed=0)
    assert draws.shape == (20000, 3, 1)
    for b in range(3):
        frequencies = np.bincount(draws[:, b, 0].astype(int), minlength=4) / 20000
        assert np.all(np.abs(frequencies - probabilities) < 4 * np.sqrt(probabilities * (1 - probabilities) / 20000))
    again = posterior.sir(np.log(probabilities)[:, None] * np.ones((4, 3)), samples, n=20000, seed=0)
    np.testing.assert_array_equal(draws, again)


def test_grid_posterior_is_normalised_and_covers_the_mass(setup):
    post = setup["post"]
    assert post.shape == (4, 200 * 200)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, rtol=1e-12)
    # the band 3.5 < max|h_j| < 4 carries little posterior mass, its outermost ring of
    # cells almost none: the mass outside the grid is negligible
    band = np.max(np.abs(setup["grid"]), axis=1) > 3.5
    ring = np.max(np.abs(setup["grid"]), axis=1) > 3.95
    assert np.all(post[:, band].sum(axis=1) < 1e-3)
    assert np.all(post[:, ring].sum(axis=1) < 1e-5)
    # posterior standard deviations (~0.5) span > 10 cells of width 0.04: resolution is fine
    assert np.all(np.diagonal(setup["cov"], axis1=1, axis2=2) > 0.1**2)


def test_quadrature_is_stable_under_grid_refinement(setup):
    coarse = posterior.log_px_quadrature(setup["log_joint"], setup["area"])
    grid, area = posterior.latent_grid(limit=5.5, n=250)
    fine = posterior.log_px_quadrature(posterior.log_joint_on_grid(setup["params"], CONFIG, setup["x"], grid), area)
    np.testing.assert_allclose(coarse, fine, atol=1e-3)


def test_latent_grid_layout():
    grid, area = posterior.latent_grid(limit=1.0, n=4)
    assert grid.shape == (16, 2) and area == pytest.approx(0.25)
    np.testing.assert_allclose(grid[:4, 0], [-0.75, -0.25, 0.25, 0.75])  # h_1 varies fastest
    np.testing.assert_allclose(grid[::4, 1], [-0.75, -0.25, 0.25, 0.75])
    with pytest.raises(ValueError):
        posterior.latent_grid(limit=-1.0)


def snis_error_and_se(setup, k, seed):
    """SNIS posterior mean, its error against the grid mean and its delta-method standard
    error sqrt(sum_i w~_i^2 (h_i - mean)^2), each [B, 2]; also the log-weights and samples."""
    log_w, (h,) = models.log_weights(setup["params"], CONFIG, setup["x"], k, np.array([seed, k]))
    estimate = posterior.snis_mean(log_w, h)
    weights = posterior.snis_weights(log_w)
    se = np.sqrt(np.einsum("kb,kbd->bd", weights**2, (h.numpy() - estimate) ** 2))
    return estimate - setup["mean"], se, log_w, h


def test_snis_mean_approaches_the_exact_posterior_mean(setup):
    naive_error = SHIFT * np.sqrt(np.diagonal(setup["cov"], axis1=1, axis2=2))  # error of q's own mean
    errors = {}
    for k in (10, 5000):
        error, se, _, _ = snis_error_and_se(setup, k, seed=3)
        errors[k] = np.sqrt(np.mean(error**2))
        if k == 5000:
            # delta-method SE (~0.01 here) plus 0.005 for the grid's resolution
            assert np.all(np.abs(error) < 4 * se + 0.005), (error, se)
            assert errors[k] < 0.2 * np.sqrt(np.mean(naive_error**2))
    assert errors[5000] < errors[10] / 3


def test_sir_sample_moments_match_the_exact_posterior(setup):
    error, se, log_w, h = snis_error_and_se(setup, 5000, seed=4)
    n = 4000
    draws = posterior.sir(log_w, h, n=n, seed=5)  # [n, B, 2]
    ess = posterior.effective_sample_size(log_w)
    assert np.all(ess > 1000)  # the fixture's q is a decent proposal
    for b in range(4):
        cov = setup["cov"][b]
        # mean: SNIS error plus resampling noise of n draws
        tolerance = 4 * np.sqrt(se[b] ** 2 + np.diag(cov) / n) + 0.005
        assert np.all(np.abs(draws[:, b].mean(axis=0) - setup["mean"][b]) < tolerance)
        # covariance: entries of a sample covariance have SE ~ sqrt((S_ii S_jj + S_ij^2) / m),
        # with m = min(n, ESS) effectively independent draws
        m = min(n, ess[b])
        cov_se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / m)
        assert np.all(np.abs(np.cov(draws[:, b].T) - cov) < 5 * cov_se + 0.005)


def test_quadrature_log_px_matches_the_k5000_estimate(setup):
    quadrature = posterior.log_px_quadrature(setup["log_joint"], setup["area"])
    estimate = evaluation.log_likelihood(setup["params"], CONFIG, setup["x"], k=5000, progress=False)
    # L_5000 is below log p(x) by ~Var(w / p(x)) / 2k (tiny here) and has a delta-method
    # SE of std(w) / (sqrt(k) mean(w)); estimate both from 5000 fresh log-weights
    log_w, _ = models.log_weights(setup["params"], CONFIG, setup["x"], 5000, np.array([9, 9]))
    w = np.exp(log_w.numpy() - quadrature)  # w / p(x), mean ~1
    relative_variance = w.var(axis=0)
    se = np.sqrt(relative_variance / 5000)
    assert np.all(np.abs(estimate - quadrature) < 4 * se + relative_variance / 5000 + 1e-3), (estimate, quadrature)
    np.testing.assert_allclose(w.mean(axis=0), 1.0, atol=4 * np.max(se) * 1.5)


def test_log_q_on_grid_is_the_encoder_density(setup):
    log_q = posterior.log_q_on_grid(setup["params"], CONFIG, setup["x"], setup["grid"])
    assert log_q.shape == (4, 200 * 200)
    q = np.exp(log_q) * setup["area"]
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-4)
    q_mean, q_std = models.encoder_layer(setup["params"], CONFIG, 1, setup["x"])
    mean, cov = posterior.grid_posterior_moments(q / q.sum(axis=1, keepdims=True), setup["grid"])
    np.testing.assert_allclose(mean, q_mean.numpy(), atol=1e-3)
    np.testing.assert_allclose(np.diagonal(cov, axis1=1, axis2=2), q_std.numpy() ** 2, rtol=1e-3)
    np.testing.assert_allclose(cov[:, 0, 1], 0.0, atol=1e-6)  # a diagonal Gaussian


def test_grid_functions_reject_other_models_and_shapes(setup):
    config = models.ModelConfig((3,), ((5,),), x_size=4)
    params = models.init_params(config)
    grid, _ = posterior.latent_grid(limit=1.0, n=4)
    with pytest.raises(ValueError, match="2 units"):
        posterior.log_joint_on_grid(params, config, np.zeros((1, 4)), grid)
    with pytest.raises(ValueError, match="2 units"):
        posterior.log_q_on_grid(params, config, np.zeros((1, 4)), grid)
    with pytest.raises(ValueError, match="x must have shape"):
        posterior.log_joint_on_grid(setup["params"], CONFIG, np.zeros((1, 10)), grid)
    with pytest.raises(ValueError, match="grid must have shape"):
        posterior.log_joint_on_grid(setup["params"], CONFIG, setup["x"], grid[:, :1])
