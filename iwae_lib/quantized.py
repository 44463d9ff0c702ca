"""A discretised-logistic likelihood for 8-bit grayscale MNIST, instead of binarization.

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

The model. The encoder is the library's q(h | x) (:func:`iwae_lib.models.encoder_layer`),
fed the intensities x = v / 255. The decoder is the library's decoder MLP
(:func:`iwae_lib.models.decoder_layer`) with an output layer twice as wide: its
``dec1/logits`` layer has 2 * 784 outputs, the first 784 are the locations mu, the last
784 the log-scales log s. One stochastic layer only. It is the library's model with
``ModelConfig(likelihood="discretized_logistic")``: :func:`iwae_lib.models.log_weights`
hands such a config to :func:`log_weights` here, so every objective, gradient estimator
and evaluation of the library applies to it, and ``TrainConfig(likelihood=
"discretized_logistic")`` trains it like any other run (data: :func:`level_splits`).

Log-likelihoods of discrete 8-bit images are reported in bits per dimension:
bits/dim = -log p(v) / (784 log 2).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from iwae_lib import models
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()
import tensorflow_probability as tfp  # noqa: E402

tfd = tfp.distributions

N_LEVELS = 256
BIN_WIDTH = 1.0 / (N_LEVELS - 1)
LIKELIHOOD = "discretized_logistic"  # the name of this likelihood in models.LIKELIHOODS
MIN_LOG_SCALE = -7.0  # scales below exp(-7) ~ 1e-3 are clipped: a bin is 1/255 ~ 4e-3 wide


# ----------------------------------------------------------------------------- the likelihood


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


# ----------------------------------------------------------------------------- the model


def as_model(config: models.ModelConfig) -> models.ModelConfig:
    """``config`` with the discretized-logistic likelihood (ValueError unless it has one stochastic layer)."""
    if config.n_stochastic != 1:
        raise ValueError("the quantized-likelihood model has one stochastic layer; "
                         f"got latent_sizes={config.latent_sizes}")
    return dataclasses.replace(config, likelihood=LIKELIHOOD)


def init_params(config: models.ModelConfig, seed: int = 0, train_mean: np.ndarray | None = None,
                initial_scale: float = 0.1) -> dict:
    """Parameters of the quantized model: :func:`iwae_lib.models.init_params` of :func:`as_model`.

    ``dec1/logits/w`` is [last hidden, 2 * x_size] (Glorot uniform); its bias starts at the
    training-set mean intensity ``train_mean`` [x_size] (or 0.5) for the locations and at
    log(initial_scale) for the log-scales.
    """
    params = models.init_params(as_model(config), seed, train_mean)
    if initial_scale != 0.1:
        params["dec1/logits/b"][config.x_size:] = math.log(initial_scale)
    return params


def decoder_loc_log_scale(params, config: models.ModelConfig, h, precision: str = "float32"):
    """Decoder outputs for latents h [..., latent]: (loc, log_scale), each float32 [..., x_size]."""
    out = models.decoder_layer(params, config, 1, h, precision).logits  # the wide linear output layer
    return out[..., : config.x_size], out[..., config.x_size:]


def log_weights(params, config: models.ModelConfig, levels, k: int, seed, stop_q_params: bool = False,
                precision: str = "float32"):
    """Importance log-weights log p(v, h) - log q(h | v) for k reparameterised samples.

    :func:`iwae_lib.models.log_weights` hands a discretized-logistic ModelConfig over to
    this function, so estimators and evaluation need nothing else for this model.

    Args:
        levels: [B, x_size] pixel levels 0..255 (float32); the encoder sees levels / 255.
        k: samples per image; seed: stateless seed [2] (the samples use it folded with 1,
            as in :func:`iwae_lib.models.log_weights`).
        stop_q_params: evaluate log q with the encoder's outputs held constant (STL, DReG).
        precision: as in :func:`iwae_lib.models.log_weights`.

    Returns:
        (log_w [k, B], [h [k, B, latent]]), like :func:`iwae_lib.models.log_weights`.
    """
    config = as_model(config)
    levels = tf.convert_to_tensor(levels, tf.float32)
    mean, std = models.encoder_layer(params, config, 1, levels / (N_LEVELS - 1), precision)
    eps = tf.random.stateless_normal(tf.stack([k, tf.shape(levels)[0], config.latent_sizes[0]]),
                                     seed=tf.random.experimental.stateless_fold_in(seed, 1))
    h = mean + std * eps
    if stop_q_params:
        mean, std = tf.stop_gradient(mean), tf.stop_gradient(std)
    log_q = tf.reduce_sum(tfd.Normal(mean, std).log_prob(h), -1)
    log_prior = tf.reduce_sum(tfd.Normal(0.0, 1.0).log_prob(h), -1)
    loc, log_scale = decoder_loc_log_scale(params, config, h, precision)
    log_lik = tf.reduce_sum(discretized_logistic_log_prob(levels, loc, log_scale), -1)
    return log_prior + log_lik - log_q, [h]


def loss_and_gradients(params, config: models.ModelConfig, levels, k: int, seed, bound_fn):
    """The bound ``bound_fn`` ([k, B] -> [B]) and the standard reparameterised gradient of
    -mean(bound) for a batch of levels [B, x_size]: (bound [B], grads dict)."""
    names = list(params)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([params[n] for n in names])
        log_w, _ = log_weights(params, config, levels, k, seed)
        bound = bound_fn(log_w)
        loss = -tf.reduce_mean(bound)
    grads = tape.gradient(loss, [params[n] for n in names])
    return bound, {n: tf.zeros_like(params[n]) if g is None else g for n, g in zip(names, grads)}


def log_likelihood(params, config: models.ModelConfig, levels, k: int = 1000, seed: int = 0,
                   batch_size: int = 100) -> np.ndarray:
    """Per-image estimates log p(v) with k samples, by :func:`iwae_lib.evaluation.log_likelihood`:
    levels [N, x_size] -> float64 [N]."""
    from iwae_lib import evaluation

    return evaluation.log_likelihood(params, as_model(config), check_levels(levels), k=k, seed=seed,
                                     batch_size=batch_size, progress=False)


# ----------------------------------------------------------------------------- data


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


# ----------------------------------------------------------------------------- reporting and samples


def bits_per_dim(log_px, x_size: int = models.X_SIZE) -> float:
    """Mean negative log-likelihood in bits per pixel: -mean(log p) / (x_size log 2)."""
    return float(-np.mean(log_px) / (x_size * math.log(2.0)))


def sample_images(params, config: models.ModelConfig, n: int, seed: int = 0, mode: bool = True) -> np.ndarray:
    """Images from the model: h ~ N(0, I), then each pixel's level.

    mode=True returns the location mu clipped to [0, 1] (the most likely intensity, a clean
    picture); mode=False draws levels from the discretised logistic. Returns [n, x_size]
    intensities in [0, 1].
    """
    config = as_model(config)
    h = tf.random.stateless_normal([n, config.latent_sizes[0]], seed=[seed, 0])
    loc, log_scale = decoder_loc_log_scale(params, config, h)
    if mode:
        return np.clip(loc.numpy(), 0.0, 1.0)
    noise = tfd.Logistic(loc, tf.exp(tf.maximum(log_scale, MIN_LOG_SCALE))).sample(seed=tf.constant([seed, 1]))
    return np.clip(np.round(noise.numpy() * (N_LEVELS - 1)), 0, N_LEVELS - 1) / (N_LEVELS - 1)
