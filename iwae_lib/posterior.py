"""Looking at the posterior p(h | x): importance-sampling tools and, for 2-D latents, a grid.

Importance sampling (any model). With log-weights ``log_w`` [k, B] and the samples
``samples`` [k, B, d] they belong to (``models.log_weights``), the self-normalised weights
w~_i = w_i / sum_j w_j turn the k samples from q into a weighted sample from p(h | x):

    snis_weights            w~, [k, B]
    snis_mean               sum_i w~_i h_i, the self-normalised estimate of E_p(h|x)[h], [B, d]
    sir                     n draws among the k samples with probabilities w~, [n, B, d]
    effective_sample_size   1 / sum_i w~_i^2, between 1 and k, [B]

Exact posterior on a grid (a model with one stochastic layer of 2 units). On the square
[-limit, limit]^2 cut into n x n cells, the midpoint rule gives

    log p(x) ~= log sum_cells p(x, h_cell) * cell_area

and the posterior mass of a cell is p(x, h_cell) / sum p(x, h). This is exact up to the
grid's resolution and the posterior mass outside the square.

Every function returns float64 NumPy arrays; inputs may be NumPy arrays or tensors.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from iwae_lib import models
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

_LOG_2PI = np.log(2.0 * np.pi)


# ----------------------------------------------------------------------------- importance sampling


def _log_w(log_w) -> np.ndarray:
    log_w = np.asarray(log_w, np.float64)
    if log_w.ndim != 2:
        raise ValueError(f"log_w must have shape [k, B], got {log_w.shape}")
    return log_w


def _matched_samples(log_w, samples) -> np.ndarray:
    samples = np.asarray(samples, np.float64)
    if samples.ndim != 3 or samples.shape[:2] != log_w.shape:
        raise ValueError(f"samples must have shape [k, B, d] = [{log_w.shape[0]}, {log_w.shape[1]}, d] "
                         f"to match log_w, got {samples.shape}")
    return samples


def snis_weights(log_w) -> np.ndarray:
    """Self-normalised importance weights: [k, B] -> [k, B], summing to 1 over k."""
    return softmax(_log_w(log_w), axis=0)


def snis_mean(log_w, samples) -> np.ndarray:
    """Self-normalised estimate of the posterior mean E_p(h|x)[h].

    log_w [k, B], samples [k, B, d] -> [B, d].
    """
    log_w = _log_w(log_w)
    weights = snis_weights(log_w)
    return np.einsum("kb,kbd->bd", weights, _matched_samples(log_w, samples))


def sir(log_w, samples, n: int, seed: int = 0) -> np.ndarray:
    """Sampling importance resampling: for each image, n draws (with replacement) among its
    k samples with probabilities w~. As k grows they become draws from p(h | x).

    log_w [k, B], samples [k, B, d] -> [n, B, d].
    """
    log_w = _log_w(log_w)
    samples = _matched_samples(log_w, samples)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    rng = np.random.default_rng(seed)
    weights = snis_weights(log_w)
    picks = np.stack([rng.choice(log_w.shape[0], size=int(n), p=weights[:, b]) for b in range(log_w.shape[1])], 1)
    return np.take_along_axis(samples, picks[:, :, None], axis=0)


def effective_sample_size(log_w) -> np.ndarray:
    """Kish's effective sample size 1 / sum_i w~_i^2: [k, B] -> [B], between 1 and k."""
    weights = snis_weights(log_w)
    return 1.0 / np.sum(weights**2, axis=0)


# ----------------------------------------------------------------------------- 2-D grid


def _check_2d(config: models.ModelConfig):
    if config.latent_sizes != (2,):
        raise ValueError(
            "the grid posterior needs a model with one stochastic layer of 2 units "
            f"(ModelConfig(latent_sizes=(2,), ...)), got latent_sizes={config.latent_sizes}"
        )


def latent_grid(limit: float = 4.0, n: int = 200):
    """Midpoints of an n x n grid of square cells on [-limit, limit]^2.

    Returns (points [n*n, 2] float64, cell area). Row-major: points.reshape(n, n, 2)[i, j]
    has h_1 = centres[j] and h_2 = centres[i] (the layout of ``np.meshgrid``), so a value
    array [..., n*n] reshaped to [..., n, n] plots directly with ``contour(X, Y, Z)``.
    """
    if limit <= 0 or int(n) != n or n < 2:
        raise ValueError(f"need limit > 0 and an integer n >= 2, got limit={limit}, n={n}")
    width = 2.0 * limit / n
    centres = -limit + width * (np.arange(n) + 0.5)
    h1, h2 = np.meshgrid(centres, centres)
    return np.stack([h1.ravel(), h2.ravel()], axis=1), width * width


def _images(config, x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] != config.x_size:
        raise ValueError(f"x must have shape [B, {config.x_size}], got {x.shape}")
    return x


def _grid_points(grid) -> np.ndarray:
    grid = np.asarray(grid, np.float64)
    if grid.ndim != 2 or grid.shape[1] != 2:
        raise ValueError(f"grid must have shape [G, 2], got {grid.shape}")
    return grid


def log_joint_on_grid(params, config: models.ModelConfig, x, grid, chunk_size: int = 5000) -> np.ndarray:
    """log p(x, h) = log N(h; 0, I) + log Bernoulli(x | decoder(h)) at every grid point.

    x [B, x_size], grid [G, 2] -> [B, G] float64. The decoder runs on ``chunk_size`` grid
    points at a time; the Bernoulli term is x . logits - sum softplus(logits), so no
    [B, G, x_size] array is ever made.
    """
    _check_2d(config)
    x, grid = _images(config, x), _grid_points(grid)
    log_prior = -0.5 * np.sum(grid**2, axis=1) - _LOG_2PI  # [G]
    parts = []
    for start in range(0, len(grid), chunk_size):
        points = tf.constant(grid[start:start + chunk_size], tf.float32)
        logits = models.decoder_layer(params, config, 1, points).logits.numpy().astype(np.float64)  # [g, D]
        parts.append(x @ logits.T - np.sum(np.logaddexp(0.0, logits), axis=1))
    return np.concatenate(parts, axis=1) + log_prior


def log_q_on_grid(params, config: models.ModelConfig, x, grid) -> np.ndarray:
    """log q(h | x) of the inference network at every grid point: [B, G] float64."""
    _check_2d(config)
    x, grid = _images(config, x), _grid_points(grid)
    mean, std = models.encoder_layer(params, config, 1, tf.constant(x, tf.float32))
    mean, log_std = mean.numpy().astype(np.float64), np.log(std.numpy().astype(np.float64))
    z = (grid[None, :, :] - mean[:, None, :]) * np.exp(-log_std)[:, None, :]
    return np.sum(-0.5 * z**2 - log_std[:, None, :] - 0.5 * _LOG_2PI, axis=2)


def grid_posterior(log_joint) -> np.ndarray:
    """Posterior probability of each grid cell, [B, G] -> [B, G], each row summing to 1."""
    return softmax(np.asarray(log_joint, np.float64), axis=1)


def grid_posterior_moments(posterior, grid):
    """Mean [B, 2] and covariance [B, 2, 2] of the grid posterior ``posterior`` [B, G]."""
    posterior, grid = np.asarray(posterior, np.float64), _grid_points(grid)
    mean = posterior @ grid
    centred = grid[None, :, :] - mean[:, None, :]  # [B, G, 2]
    cov = np.einsum("bg,bgi,bgj->bij", posterior, centred, centred)
    return mean, cov


def log_px_quadrature(log_joint, cell_area: float) -> np.ndarray:
    """log p(x) by the midpoint rule: logsumexp over the grid + log cell area. [B, G] -> [B]."""
    return logsumexp(np.asarray(log_joint, np.float64), axis=1) + np.log(cell_area)
