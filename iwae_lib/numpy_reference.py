"""A plain NumPy (float64) reference evaluator, independent of TensorFlow.

It needs only a ``weights.npz`` and the architecture dict (``ModelConfig.to_dict()``, or
``config.json["model"]`` of a run directory), so a trained model can be checked, or used,
without the library's TensorFlow code. The networks, the Gaussian and Bernoulli log
densities and the log-mean-exp are written out here from their definitions.

Architecture dict::

    {"latent_sizes": [n_1, ..., n_L], "hidden_sizes": [[...], ..., [...]], "x_size": 784}

Weight format (a dict of arrays; ``x`` is layer 0, ``h_i`` has ``n_i`` units, ``H_i`` is
the list ``hidden_sizes[i-1]`` of J_i tanh layers, ``n_below`` is x_size for i = 1 and
n_{i-1} otherwise; every ``w`` is [fan_in, fan_out], every ``b`` is [fan_out], and a layer
computes ``input @ w + b``):

    enc{i}/hidden{j}/w|b   inference network of layer i, tanh layer j = 0..J_i-1:
                           n_below -> H_i[0] -> ... -> H_i[-1]
    enc{i}/mean/w|b        mean of q(h_i | below), [H_i[-1], n_i]
    enc{i}/logstd/w|b      log standard deviation of q(h_i | below), [H_i[-1], n_i]
    dec{i}/hidden{j}/w|b   generative network of layer i, tanh layer j, the hidden sizes
                           reversed: n_i -> H_i[-1] -> ... -> H_i[0]
    dec1/logits/w|b        Bernoulli logits of p(x | h_1), [H_1[0], x_size]
    dec{i}/mean/w|b        (i >= 2) mean of p(h_{i-1} | h_i), [H_i[0], n_{i-1}]
    dec{i}/logstd/w|b      (i >= 2) log std of p(h_{i-1} | h_i), [H_i[0], n_{i-1}]

The top layer has the prior p(h_L) = N(0, I).

The 8-bit model (``"likelihood": "discretized_logistic"`` in the architecture dict, one
stochastic layer) takes pixel levels v in 0..255 as x; its encoder sees v / 255, and
``dec1/logits`` is [H_1[0], 2 * x_size]: the first x_size outputs are locations mu on the
[0, 1] scale, the last x_size log-scales log s (clipped below at -7). Pixel v has the mass
of Logistic(mu, s) on [v/255 - 1/510, v/255 + 1/510], the first and last bins extended to
-inf and +inf.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_expit, logsumexp

LOG_2PI = math.log(2.0 * math.pi)
LIKELIHOODS = ("bernoulli", "discretized_logistic")


def load_weights(path) -> dict:
    """The arrays of a ``weights.npz`` as a dict name -> float64 array."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: np.asarray(archive[name], np.float64) for name in archive.files}


def _architecture(model_dict: dict):
    try:
        latent = [int(n) for n in model_dict["latent_sizes"]]
        hidden = [[int(n) for n in layer] for layer in model_dict["hidden_sizes"]]
    except (KeyError, TypeError) as err:
        raise ValueError(
            "the architecture dict needs 'latent_sizes' and 'hidden_sizes' "
            f"(as written by ModelConfig.to_dict()), got {model_dict!r}"
        ) from err
    if not latent or len(hidden) != len(latent):
        raise ValueError(f"need one hidden-size list per stochastic layer, got {model_dict!r}")
    likelihood = model_dict.get("likelihood", "bernoulli")
    if likelihood not in LIKELIHOODS or (likelihood == "discretized_logistic" and len(latent) != 1):
        raise ValueError(f"unknown likelihood {likelihood!r} for {len(latent)} stochastic layer(s): "
                         f"expected one of {LIKELIHOODS} (discretized_logistic with one layer)")
    return latent, hidden, int(model_dict.get("x_size", 784)), likelihood


def _get(weights: dict, name: str) -> np.ndarray:
    if name not in weights:
        raise ValueError(f"weight {name!r} is missing; the weights have: {', '.join(sorted(weights))}")
    return np.asarray(weights[name], np.float64)


def _linear(weights, prefix, inputs):
    """inputs [..., fan_in] -> [..., fan_out]; the leading axes are flattened into one matrix
    product (NumPy would otherwise call BLAS once per leading index)."""
    w = _get(weights, prefix + "/w")
    flat = inputs.reshape(-1, inputs.shape[-1]) @ w + _get(weights, prefix + "/b")
    return flat.reshape(inputs.shape[:-1] + (w.shape[1],))


def _tanh_mlp(weights, prefix, inputs, n_hidden):
    for j in range(n_hidden):
        inputs = np.tanh(_linear(weights, f"{prefix}/hidden{j}", inputs))
    return inputs


def gaussian_log_density(value, mean, log_std):
    """log N(value; mean, exp(log_std)^2), summed over the last axis."""
    z = (value - mean) * np.exp(-log_std)
    return np.sum(-0.5 * z * z - log_std - 0.5 * LOG_2PI, axis=-1)


def bernoulli_log_density(x, logits):
    """log Bernoulli(x; sigmoid(logits)) = x * l - log(1 + e^l), summed over the last axis."""
    return np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)


def discretized_logistic_log_density(levels, loc, log_scale):
    """log P(v) of pixel levels v in 0..255 under the discretised logistic, summed over the last axis.

    Interior bins: log(sigma(a) - sigma(b)) with a > b the bin's edges in units of the scale,
    computed as log sigma(a) + log(1 - exp(log sigma(b) - log sigma(a))) on the side of the
    distribution where both are small (mirrored for bins above the location), so nothing
    cancels in the tails.
    """
    levels = np.asarray(levels, np.float64)
    inv_scale = np.exp(-np.maximum(log_scale, -7.0))
    x = levels / 255.0
    upper = (x + 0.5 / 255.0 - loc) * inv_scale
    lower = (x - 0.5 / 255.0 - loc) * inv_scale
    above = (upper + lower) > 0  # mirror: sigma(u) - sigma(l) = sigma(-l) - sigma(-u)
    a, b = np.where(above, -lower, upper), np.where(above, -upper, lower)
    log_a = log_expit(a)
    interior = log_a + np.log(-np.expm1(log_expit(b) - log_a))
    log_p = np.where(levels < 0.5, log_expit(upper), np.where(levels > 254.5, log_expit(-lower), interior))
    return np.sum(log_p, axis=-1)


def _encoder(weights, i, hidden, below):
    h = _tanh_mlp(weights, f"enc{i}", below, len(hidden[i - 1]))
    return _linear(weights, f"enc{i}/mean", h), _linear(weights, f"enc{i}/logstd", h)


def log_weights_from_noise_np(weights: dict, model_dict: dict, x, noise) -> np.ndarray:
    """log p(x, h) - log q(h | x) for given standard-normal noise.

    Args:
        weights: dict of arrays in the format of the module docstring.
        model_dict: architecture dict.
        x: [B, x_size] binary images (pixel levels 0..255 for the 8-bit model).
        noise: list of L arrays, noise[i-1] of shape [k, B, n_i]; the samples are
            h_i = mean_i + std_i * noise[i-1], layer by layer (mean_i, std_i of
            q(h_i | h_{i-1}), with h_0 = x).

    Returns:
        float64 array [k, B].
    """
    latent, hidden, x_size, likelihood = _architecture(model_dict)
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] != x_size:
        raise ValueError(f"x must have shape [B, {x_size}], got {x.shape}")
    if len(noise) != len(latent):
        raise ValueError(f"need one noise array per stochastic layer ({len(latent)}), got {len(noise)}")
    samples, log_q, below = [], 0.0, x / 255.0 if likelihood == "discretized_logistic" else x
    for i, eps in enumerate(noise, 1):
        eps = np.asarray(eps, np.float64)
        mean, log_std = _encoder(weights, i, hidden, below)
        h = mean + np.exp(log_std) * eps  # [k, B, n_i] (layer 1 by broadcasting over k)
        log_q = log_q + gaussian_log_density(h, mean, log_std)
        samples.append(h)
        below = h
    log_p = gaussian_log_density(samples[-1], 0.0, 0.0)
    for i in range(len(latent), 0, -1):
        top = _tanh_mlp(weights, f"dec{i}", samples[i - 1], len(hidden[i - 1]))
        if i == 1 and likelihood == "discretized_logistic":
            out = _linear(weights, "dec1/logits", top)
            log_p = log_p + discretized_logistic_log_density(x, out[..., :x_size], out[..., x_size:])
        elif i == 1:
            log_p = log_p + bernoulli_log_density(x, _linear(weights, "dec1/logits", top))
        else:
            mean, log_std = _linear(weights, f"dec{i}/mean", top), _linear(weights, f"dec{i}/logstd", top)
            log_p = log_p + gaussian_log_density(samples[i - 2], mean, log_std)
    return log_p - log_q


def log_weights_np(weights: dict, model_dict: dict, x, k: int, rng) -> np.ndarray:
    """k importance log-weights per image, [k, B] float64, with noise from ``rng``.

    ``rng`` is a ``numpy.random.Generator`` (an int is taken as its seed).
    """
    latent = _architecture(model_dict)[0]
    rng = np.random.default_rng(rng)
    batch = np.shape(x)[0]
    noise = [rng.standard_normal((k, batch, n)) for n in latent]
    return log_weights_from_noise_np(weights, model_dict, x, noise)


def log_likelihood_np(weights: dict, model_dict: dict, x, k: int = 5000, seed: int = 0, chunk: int = 100) -> np.ndarray:
    """Per-image estimates of log p(x): log (1/k) sum_i w_i, [B] float64.

    The k samples are drawn ``chunk`` at a time; each chunk's logsumexp is kept and the
    chunks are combined with one more logsumexp, so nothing under- or overflows.
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    if int(chunk) != chunk or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk}")
    rng = np.random.default_rng(seed)
    parts, done = [], 0
    while done < k:
        size = min(chunk, k - done)
        parts.append(logsumexp(log_weights_np(weights, model_dict, x, size, rng), axis=0))
        done += size
    return logsumexp(np.stack(parts), axis=0) - math.log(k)
