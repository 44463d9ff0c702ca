"""Evaluation: the k-sample log-likelihood estimate (k = 5000 in the paper) and active units.

log p(x) is estimated by the IWAE bound with many samples, L_5000, which the paper uses as
its test log-likelihood. Images are processed in batches and the k samples in chunks, so
memory stays bounded (about batch_size * chunk_size * 784 floats) whatever k is; the
chunks are combined with a running logsumexp, which is stable in float32.

Both work for every ``models.ModelConfig``: for the discretized-logistic (8-bit) model the
images are pixel levels 0..255 (:mod:`iwae_lib.likelihoods`), of which the encoder sees
levels / 255.
"""

import functools
import math

import numpy as np
from tqdm.auto import tqdm

from iwae_lib import likelihoods, models
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()


def _chunks(k: int, chunk_size: int) -> list:
    """Sizes of the sample chunks: as many full chunks as fit, then the remainder."""
    full, rest = divmod(k, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


@functools.lru_cache(maxsize=32)
def make_log_likelihood_fn(config, k: int, chunk_size: int):
    """A compiled function (params, x [B, x_size], seed [2]) -> [B] estimates of log p(x)."""
    sizes = _chunks(k, min(chunk_size, k))
    n_full, full_size = (len(sizes) - 1, sizes[0]) if sizes[-1] != sizes[0] else (len(sizes), sizes[0])
    rest = sizes[-1] if sizes[-1] != sizes[0] else 0

    def chunk_lse(params, x, size, seed):
        log_w, _ = models.log_weights(params, config, x, size, seed)
        return tf.reduce_logsumexp(log_w, axis=0)

    @tf.function(reduce_retracing=True)
    def log_likelihood_batch(params, x, seed):
        total = tf.fill(tf.shape(x)[:1], -np.inf)
        for c in tf.range(n_full):
            part = chunk_lse(params, x, full_size, tf.random.experimental.stateless_fold_in(seed, c))
            total = tf.reduce_logsumexp(tf.stack([total, part]), axis=0)
        if rest:
            part = chunk_lse(params, x, rest, tf.random.experimental.stateless_fold_in(seed, n_full))
            total = tf.reduce_logsumexp(tf.stack([total, part]), axis=0)
        return total - math.log(k)

    return log_likelihood_batch


def log_likelihood(params, config, x, k: int = 5000, seed: int = 0, batch_size: int = 100,
                   chunk_size: int = 100, progress: bool = True, description: str = "log p(x)"):
    """Per-image estimates of log p(x) with k importance samples (the IWAE bound L_k).

    Args:
        params: parameter dict (NumPy arrays or tf.Variables).
        config: models.ModelConfig.
        x: [N, x_size] binary images (pixel levels 0..255 for a discretized-logistic model).
        k: importance samples per image (5000 in the paper).
        seed: integer seed; the estimate is a deterministic function of it.
        batch_size, chunk_size: images per batch and samples per chunk (memory and speed).

    Returns:
        float64 NumPy array [N] of per-image estimates; the data set's estimate is its mean.
    """
    for name, value in (("k", k), ("batch_size", batch_size), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != config.x_size:
        raise ValueError(f"x must have shape [N, {config.x_size}], got {x.shape}")
    fn = make_log_likelihood_fn(config, k, chunk_size)
    tensors = {name: tf.convert_to_tensor(value) for name, value in params.items()}
    out = np.empty(len(x), np.float64)
    starts = range(0, len(x), batch_size)
    for b, start in enumerate(tqdm(starts, desc=description, unit="batch", disable=not progress, leave=False)):
        out[start:start + batch_size] = fn(tensors, x[start:start + batch_size], tf.constant([seed, b], tf.int64))
    return out


@functools.lru_cache(maxsize=32)
def make_posterior_means_fn(config, n_samples: int):
    """A compiled function (params, x [B, x_size], seed [2]) -> list of E_q[h_i | x], [B, latent_i]."""

    @tf.function(autograph=False, reduce_retracing=True)
    def posterior_means(params, xb, seed):
        means, below = [], likelihoods.get(config.likelihood).encoder_input(xb)
        for i in range(1, config.n_stochastic + 1):
            mean, std = models.encoder_layer(params, config, i, below)
            means.append(tf.reduce_mean(mean, axis=0) if i > 1 else mean)
            shape = tf.concat([[n_samples], tf.shape(mean)], 0) if i == 1 else tf.shape(mean)
            eps = tf.random.stateless_normal(shape, seed=tf.random.experimental.stateless_fold_in(seed, i))
            below = mean + std * eps  # layer 1: [S, B, latent_1] samples; later layers keep that shape
        return means

    return posterior_means


def active_units(params, config, x, n_samples: int = 100, threshold: float = 1e-2, seed: int = 0,
                 batch_size: int = 500):
    """Burda et al.'s active units: unit u is active if Cov_x(E_{q(h|x)}[u]) > threshold.

    E_q[h_1 | x] is the mean of q(h_1 | x) exactly; for higher layers
    E_q[h_i | x] = E_{h_{i-1} ~ q}[mean of q(h_i | h_{i-1})] is estimated with n_samples.

    Args:
        x: [N, x_size] binary images (pixel levels 0..255 for a discretized-logistic model).
    Returns:
        dict with ``variances``: list (one per stochastic layer) of float64 [latent_i]
        arrays, and ``active``: list of ints, the number of units above threshold.
    """
    x = np.asarray(x, np.float32)
    tensors = {name: tf.convert_to_tensor(value) for name, value in params.items()}
    posterior_means = make_posterior_means_fn(config, n_samples)
    per_layer = [[] for _ in config.latent_sizes]
    for b, start in enumerate(range(0, len(x), batch_size)):
        batch_means = posterior_means(tensors, x[start:start + batch_size], tf.constant([seed, b], tf.int64))
        for layer, m in zip(per_layer, batch_means):
            layer.append(m.numpy().astype(np.float64))
    variances = [np.var(np.concatenate(layer), axis=0) for layer in per_layer]
    return {"variances": variances, "active": [int(np.sum(v > threshold)) for v in variances]}
