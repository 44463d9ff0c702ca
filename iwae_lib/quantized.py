"""The 8-bit model: the library's one-layer model with the discretized-logistic likelihood
(:mod:`iwae_lib.likelihoods`), over MNIST's pixel levels 0..255 instead of binarized pixels.

Everything a model does (log-weights, bounds, gradient estimators, evaluation, training)
is the library's, through ``ModelConfig(likelihood="discretized_logistic")``. This module
holds what is particular to looking at such a model: its configuration, parameters with
a chosen initial scale, the decoder's locations and scales, and pictures of its samples.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from iwae_lib import models
from iwae_lib._quiet import import_tensorflow_quietly
from iwae_lib.likelihoods import MIN_LOG_SCALE, N_LEVELS

tf = import_tensorflow_quietly()
import tensorflow_probability as tfp  # noqa: E402

tfd = tfp.distributions

LIKELIHOOD = "discretized_logistic"  # ModelConfig.likelihood of the 8-bit model


def as_model(config: models.ModelConfig) -> models.ModelConfig:
    """``config`` with the discretized-logistic likelihood (ValueError unless it has one stochastic layer)."""
    if config.n_stochastic != 1:
        raise ValueError("the quantized-likelihood model has one stochastic layer; "
                         f"got latent_sizes={config.latent_sizes}")
    return dataclasses.replace(config, likelihood=LIKELIHOOD)


def init_params(config: models.ModelConfig, seed: int = 0, train_mean: np.ndarray | None = None,
                initial_scale: float = 0.1) -> dict:
    """Parameters of the 8-bit model: :func:`iwae_lib.models.init_params` of :func:`as_model`.

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
    out = models.decoder_output(params, config, h, precision)
    return out[..., : config.x_size], out[..., config.x_size:]


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
