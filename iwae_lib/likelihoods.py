"""The likelihoods p(x | h_1) a model can have, as plug-ins chosen by ``ModelConfig.likelihood``.

A likelihood says what the data are and how the decoder's output layer ``dec1/logits``
scores them: its outputs per pixel, the log-probability of a batch given those outputs, the
encoder's input, the output bias a run starts from, the data splits a run trains on, and
extra numbers for the final record. :func:`iwae_lib.models.log_weights`, evaluation and
training call these and have no branch per likelihood.

``bernoulli`` (the paper's): binary pixels, one logit each.

``discretized_logistic``: 8-bit gray levels v in {0, ..., 255}, a location and a log-scale
per pixel (Salimans et al., 2017, without the mixture).
Each pixel takes one of 256 values v in {0, ..., 255}; write x = v / 255 in [0, 1] and
delta = 1 / 255 for the width of a bin. Given a location mu and a scale s (from the
decoder), the discretised logistic puts on v the mass of a Logistic(mu, s) in its bin:

    P(v) = sigma((x + delta/2 - mu) / s) - sigma((x - delta/2 - mu) / s)    0 < v < 255
    P(0)   = sigma((delta/2 - mu) / s)                   (all mass below the first edge)
    P(255) = 1 - sigma((1 - delta/2 - mu) / s)           (all mass above the last edge)

so the 256 probabilities telescope to exactly 1. For a stable logarithm of an interior
bin, with a = upper / s and b = lower / s (a > b):

    sigma(a) - sigma(b) = sigma(a) sigma(-b) (1 - exp(b - a))

Its log is a sum of log-sigmoids and log(1 - exp(-(a - b))), all computed without
cancellation even far in the tails.

Log-likelihoods of discrete 8-bit images are also reported in bits per dimension:
bits/dim = -log p(v) / (784 log 2).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

N_LEVELS = 256
BIN_WIDTH = 1.0 / (N_LEVELS - 1)
MIN_LOG_SCALE = -7.0  # scales below exp(-7) ~ 1e-3 are clipped: a bin is 1/255 ~ 4e-3 wide


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """p(x | h_1) as a plug-in.

    name: the value of ``ModelConfig.likelihood``.
    outputs_per_pixel: outputs of ``dec1/logits`` per pixel.
    log_prob: (outputs [..., B, outputs_per_pixel * D], x [B, D]) -> log p(x | h) [..., B].
    encoder_input: x [B, D] -> what q(h_1 | x) reads.
    output_bias: (train_mean [D] in [0, 1] or None, D) -> the initial ``dec1/logits/b``, or
        None to keep zeros.
    data: a ``data.DataSplits`` -> the splits a run trains and is evaluated on.
    report: (split name, log p(x) [N], D) -> extra entries of metrics.json.
    max_stochastic: the most stochastic layers a model with it may have (None: any).
    """

    name: str
    outputs_per_pixel: int
    log_prob: Callable
    encoder_input: Callable
    output_bias: Callable
    data: Callable
    report: Callable
    max_stochastic: int | None = None


# ----------------------------------------------------------------------------- Bernoulli


@tf.function(jit_compile=True)
def _bernoulli_log_prob_fused(logits, x):
    return tf.reduce_sum(x * logits - tf.nn.softplus(logits), axis=-1)


@tf.function(jit_compile=True)
def _bernoulli_log_prob_grad_fused(logits, x, upstream):
    return upstream[..., None] * (x - tf.sigmoid(logits))


@tf.custom_gradient
def _bernoulli_log_prob(logits, x):
    def grad(upstream):
        return _bernoulli_log_prob_grad_fused(logits, x, upstream), None

    return _bernoulli_log_prob_fused(logits, x), grad


def bernoulli_log_prob(logits, x):
    """sum_d log Bernoulli(x_d | sigmoid(l_d)) = sum_d x_d l_d - softplus(l_d).

    The same value as ``tfd.Bernoulli(logits=l).log_prob(x)`` summed over pixels (a test
    checks it), computed in one XLA-fused pass over the logits, and with its gradient
    x - sigmoid(l) in one more. This elementwise work over [k * B, 784] logits costs as
    much as all the decoder's matrix products when done op by op.

    Args:
        logits: [..., B, D]; x: [B, D] binary (broadcast against logits, never copied).
    Returns:
        [..., B] log-likelihoods.
    """
    return _bernoulli_log_prob(logits, tf.convert_to_tensor(x, logits.dtype))


def _bernoulli_output_bias(train_mean, x_size):
    """The logit of the mean training pixel, as in the reference implementation (yburda/iwae,
    ``get_train_bias_np``), so training starts from the marginal pixel model; None without a mean."""
    if train_mean is None:
        return None
    mean = np.clip(np.asarray(train_mean, np.float64), 1e-3, 1 - 1e-3)
    return np.log(mean / (1 - mean)).astype(np.float32)


BERNOULLI = Likelihood(name="bernoulli", outputs_per_pixel=1, log_prob=bernoulli_log_prob,
                       encoder_input=lambda x: x, output_bias=_bernoulli_output_bias, data=lambda ds: ds,
                       report=lambda split, log_px, x_size: {})


# ----------------------------------------------------------------------------- discretized logistic


def _log1mexp(d):
    """log(1 - exp(-d)) for d > 0, accurate for small and large d."""
    # Each branch gets inputs from its own range, so neither makes inf/NaN gradients.
    cut = math.log(2.0)
    small, large = tf.minimum(d, cut), tf.maximum(d, cut)
    return tf.where(d < cut, tf.math.log(-tf.math.expm1(-small)), tf.math.log1p(-tf.exp(-large)))


def discretized_logistic_log_prob(levels, loc, log_scale):
    """log P(v) of pixel levels under the discretised logistic, elementwise.

    Args:
        levels: pixel values in {0, ..., 255} (any numeric dtype), shape [..., D].
        loc: locations mu on the [0, 1] intensity scale, broadcastable to ``levels``.
        log_scale: log s, broadcastable; values below MIN_LOG_SCALE are clipped.

    Returns:
        float32 tensor [..., D] of log-probabilities (sum over D for an image).
    """
    x = tf.cast(levels, tf.float32) / (N_LEVELS - 1)
    loc = tf.convert_to_tensor(loc, tf.float32)
    inv_scale = tf.exp(-tf.maximum(tf.convert_to_tensor(log_scale, tf.float32), MIN_LOG_SCALE))
    upper = (x + 0.5 * BIN_WIDTH - loc) * inv_scale
    lower = (x - 0.5 * BIN_WIDTH - loc) * inv_scale
    first = tf.math.log_sigmoid(upper)  # v = 0: P(value < first edge)
    last = tf.math.log_sigmoid(-lower)  # v = 255: P(value > last edge)
    interior = tf.math.log_sigmoid(upper) + tf.math.log_sigmoid(-lower) + _log1mexp(upper - lower)
    v = tf.cast(levels, tf.float32)
    return tf.where(v < 0.5, first, tf.where(v > N_LEVELS - 1.5, last, interior))


def check_levels(levels) -> np.ndarray:
    """Pixel levels as a float32 array, with a clear error unless they are 0..255 integers."""
    levels = np.asarray(levels)
    if levels.size and (levels.min() < 0 or levels.max() > N_LEVELS - 1 or np.any(levels != np.round(levels))):
        raise ValueError("pixel levels must be whole numbers in 0..255; to convert intensities in [0, 1] "
                         "use to_levels(intensities)")
    return levels.astype(np.float32)


def to_levels(intensities) -> np.ndarray:
    """Intensities in [0, 1] (``data.load_mnist``: uint8 / 255) -> float32 levels 0..255."""
    intensities = np.asarray(intensities, np.float32)  # float32 holds v / 255 and 255 * (v / 255) exactly enough
    if intensities.size and (intensities.min() < 0 or intensities.max() > 1):
        raise ValueError("intensities must lie in [0, 1]")
    return np.round(intensities * np.float32(N_LEVELS - 1))


def level_splits(ds):
    """The 8-bit model's data: MNIST's gray levels where the Bernoulli model has binary images.

    Args:
        ds: ``data.load_dataset("mnist", validation_size, seed)`` (train holds intensities).

    Returns:
        a ``data.DataSplits`` like ``ds`` with ``dynamic`` False and float32 pixel levels
        0..255, never binarized: train [N, 784], valid [V, 784] (the same rows of the
        training set as ds.valid) or None, test [10000, 784]. ``train_mean`` stays the
        mean intensity [784] in [0, 1], the locations' initial bias.
    """
    from iwae_lib import data

    if ds.name != "mnist" or not ds.dynamic:
        raise ValueError("the discretized_logistic (8-bit) likelihood needs the gray levels of the mnist data set "
                         f"(raw intensities), not {ds.name!r}")
    valid = None
    if ds.valid is not None:
        valid = to_levels(data.load_mnist("train")[0][ds.valid_indices])
    return dataclasses.replace(ds, dynamic=False, train=to_levels(ds.train), valid=valid,
                              test=to_levels(data.load_mnist("test")[0]))


def bits_per_dim(log_px, x_size: int = 784) -> float:
    """Mean negative log-likelihood in bits per pixel: -mean(log p) / (x_size log 2)."""
    return float(-np.mean(log_px) / (x_size * math.log(2.0)))


def _split_log_prob(outputs, levels):
    """log p(v | h) [..., B] from the output layer [..., B, 2 D]: locations, then log-scales."""
    x_size = outputs.shape[-1] // 2
    return tf.reduce_sum(discretized_logistic_log_prob(levels, outputs[..., :x_size], outputs[..., x_size:]), -1)


def _logistic_output_bias(train_mean, x_size, initial_scale=0.1):
    """Locations at the mean intensity (or 0.5), log-scales at log(initial_scale)."""
    loc = np.full(x_size, 0.5) if train_mean is None else np.asarray(train_mean, np.float64)
    return np.concatenate([loc, np.full(x_size, math.log(initial_scale))]).astype(np.float32)


def _bits_report(split, log_px, x_size):
    return {} if log_px is None else {f"{split}_bits_per_dim": bits_per_dim(log_px, x_size)}


DISCRETIZED_LOGISTIC = Likelihood(name="discretized_logistic", outputs_per_pixel=2, log_prob=_split_log_prob,
                                  encoder_input=lambda levels: levels / (N_LEVELS - 1),
                                  output_bias=_logistic_output_bias, data=level_splits, report=_bits_report,
                                  max_stochastic=1)

LIKELIHOODS = {lik.name: lik for lik in (BERNOULLI, DISCRETIZED_LOGISTIC)}


def get(name: str) -> Likelihood:
    """The likelihood called ``name`` (ValueError naming the choices otherwise)."""
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[name]
