"""Gradient noise: variance and signal-to-noise ratio of the bounds' gradient estimators.

For one parameter theta_j, a stochastic gradient estimate g_j has a signal-to-noise ratio

    SNR_j = |E[g_j]| / std[g_j]                       (Rainforth et al., 2018)

estimated from R independent estimates on the same batch (only the samples h change).
Rainforth et al. show that with the standard IWAE estimator the inference network's SNR
falls like 1/sqrt(k) while the generative network's rises like sqrt(k); DReG (Tucker et
al., 2019) removes the score-function noise that causes the fall.

PIWAE (Rainforth et al., 2018) trains the two networks with different bounds: the
generative network with the IWAE bound, the inference network with another one (MIWAE,
CIWAE or the VAE bound). :func:`piwae_gradients` is the library's
:func:`iwae_lib.estimators.piwae_loss_and_gradients`, the gradient that training with
``TrainConfig(objective="piwae")`` follows.

A *gradient function* here is any callable ``(params, x, seed) -> (bound [B], grads)``
with ``grads`` a dict like the parameters (gradients of the loss -mean(bound));
:func:`estimator_gradient_fn` and :func:`piwae_gradient_fn` make them.
"""

from __future__ import annotations

import numpy as np

from iwae_lib import estimators, models, objectives
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

NETWORKS = ("encoder", "decoder")


# ----------------------------------------------------------------------------- gradient functions


def estimator_gradient_fn(config: models.ModelConfig, k: int, estimator: str = "standard",
                          objective: str = "iwae", **bound_options):
    """The library's estimator as a gradient function ``(params, x, seed) -> (bound, grads)``."""
    estimators.check_estimator(estimator, objective)
    objectives.bound_fn(objective, **bound_options)  # raises on a bad objective now, not later

    def gradient_fn(params, x, seed):
        return estimators.loss_and_gradients(params, config, x, k, seed, objective, estimator, **bound_options)

    return gradient_fn


def piwae_gradients(params, config: models.ModelConfig, x, k: int, seed, encoder_objective: str = "miwae",
                    encoder_estimator: str = "standard", **bound_options):
    """PIWAE's gradient: the decoder follows the IWAE bound, the encoder another bound.

    Both parts use the same k samples (the same ``seed``); see
    :func:`iwae_lib.estimators.piwae_loss_and_gradients`.

    Args:
        params: dict of tf.Variable.
        x: [B, x_size] binary images; seed: stateless seed [2].
        encoder_objective: the encoder's bound, e.g. "miwae" (with ``miwae_groups``),
            "ciwae" (with ``ciwae_beta``) or "vae".
        encoder_estimator: "standard" or "stl" ("dreg" is defined for the IWAE bound only).

    Returns:
        (IWAE bound [B], grads dict: ``enc*`` entries from the encoder objective, ``dec*``
        entries from the IWAE bound).
    """
    return estimators.piwae_loss_and_gradients(params, config, x, k, seed, encoder_objective, encoder_estimator,
                                               **bound_options)


def piwae_gradient_fn(config: models.ModelConfig, k: int, encoder_objective: str = "miwae",
                      encoder_estimator: str = "standard", **bound_options):
    """:func:`piwae_gradients` as a gradient function ``(params, x, seed) -> (bound, grads)``."""
    estimators.check_piwae(encoder_objective, encoder_estimator)
    objectives.bound_fn(encoder_objective, **bound_options)
    if encoder_objective == "miwae" and k % bound_options.get("miwae_groups", 1):
        raise ValueError(f"MIWAE needs k divisible by miwae_groups: k={k}, "
                         f"miwae_groups={bound_options.get('miwae_groups')}")

    def gradient_fn(params, x, seed):
        return piwae_gradients(params, config, x, k, seed, encoder_objective, encoder_estimator, **bound_options)

    return gradient_fn


# ----------------------------------------------------------------------------- sampling gradients


def split_networks(names) -> dict:
    """Parameter names grouped by network: {"encoder": [enc*...], "decoder": [dec*...]}."""
    names = sorted(names)
    return {"encoder": [n for n in names if n.startswith("enc")],
            "decoder": [n for n in names if n.startswith("dec")]}


def gradient_samples(params, config: models.ModelConfig, x, k: int, estimator: str = "standard",
                     n_repeats: int = 100, seed: int = 0, objective: str = "iwae", gradient_fn=None,
                     **bound_options) -> dict:
    """Repeated gradient estimates on one fixed batch, flattened per network.

    Args:
        params: parameter dict (NumPy arrays or variables); not modified.
        config: models.ModelConfig.
        x: [B, x_size] binary images, the same batch for every repeat.
        k: samples per image.
        estimator, objective, bound_options: the library estimator to sample
            (ignored when ``gradient_fn`` is given).
        n_repeats: number R of independent estimates (>= 2, to have a spread).
        seed: integer; repeat r uses the stateless seed (seed, r).
        gradient_fn: optional ``(params, x, seed) -> (bound, grads)``, e.g. from
            :func:`piwae_gradient_fn`; it must be built for the same k.

    Returns:
        {"encoder": float64 [R, P_enc], "decoder": float64 [R, P_dec]}: the gradients of
        the loss -mean(bound), parameters in sorted-name order, each flattened.
    """
    if int(n_repeats) != n_repeats or n_repeats < 2:
        raise ValueError(f"n_repeats must be an integer >= 2 to measure a spread, got {n_repeats}")
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != config.x_size:
        raise ValueError(f"x must have shape [B, {config.x_size}], got {x.shape}")
    if gradient_fn is None:
        gradient_fn = estimator_gradient_fn(config, k, estimator, objective, **bound_options)
    variables = models.as_variables(models.to_numpy(params))
    groups = split_networks(variables)
    x_tensor = tf.constant(x)

    @tf.function
    def flat_gradients(seed_tensor):
        _, grads = gradient_fn(variables, x_tensor, seed_tensor)
        return [tf.concat([tf.reshape(grads[n], [-1]) for n in groups[net]], 0) for net in NETWORKS]

    rows = [[], []]
    for r in range(int(n_repeats)):
        for row, g in zip(rows, flat_gradients(tf.constant([seed, r], tf.int64))):
            row.append(g.numpy().astype(np.float64))
    return {net: np.stack(row) for net, row in zip(NETWORKS, rows)}


# ----------------------------------------------------------------------------- statistics


def _as_samples(samples) -> np.ndarray:
    samples = np.asarray(samples, np.float64)
    if samples.ndim != 2 or samples.shape[0] < 2:
        raise ValueError(f"gradient samples must have shape [R >= 2, P], got {samples.shape}")
    return samples


def snr(samples) -> np.ndarray:
    """Per-parameter signal-to-noise ratio |mean| / std over repeats: [R, P] -> [P].

    The standard deviation uses R - 1 degrees of freedom. Parameters whose estimates never
    vary (std 0, e.g. a gradient that is identically zero) get NaN, so that aggregates
    with ``np.nanmean`` skip them.
    """
    samples = _as_samples(samples)
    std = samples.std(axis=0, ddof=1)
    mean = np.abs(samples.mean(axis=0))
    out = np.full(samples.shape[1], np.nan)
    varies = std > 0
    out[varies] = mean[varies] / std[varies]
    return out


def gradient_variance(samples) -> np.ndarray:
    """Per-parameter variance over repeats (R - 1 degrees of freedom): [R, P] -> [P]."""
    return _as_samples(samples).var(axis=0, ddof=1)


def summarize(samples: dict) -> list:
    """One row per network of :func:`gradient_samples` output.

    Returns:
        list of dicts with ``network``, ``mean_snr`` (mean over parameters, NaNs skipped),
        ``median_snr``, ``mean_variance`` (mean over parameters of the variance) and
        ``mean_abs_gradient`` (mean over parameters of |E g|).
    """
    rows = []
    for net in NETWORKS:
        s = snr(samples[net])
        rows.append({"network": net, "mean_snr": float(np.nanmean(s)), "median_snr": float(np.nanmedian(s)),
                     "mean_variance": float(np.mean(gradient_variance(samples[net]))),
                     "mean_abs_gradient": float(np.mean(np.abs(samples[net].mean(axis=0))))})
    return rows


def snr_sweep(params, config: models.ModelConfig, x, ks, estimators_to_compare=("standard", "stl", "dreg"),
              n_repeats: int = 100, seed: int = 0, extra_gradient_fns=None) -> list:
    """SNR and variance summaries for every (k, estimator): the data of an SNR-vs-k figure.

    Args:
        ks: sample counts to try, e.g. (1, 5, 10, 50, 100).
        estimators_to_compare: library estimator names (IWAE objective).
        extra_gradient_fns: optional {label: factory(k) -> gradient function}, e.g.
            ``{"piwae": lambda k: piwae_gradient_fn(config, k, miwae_groups=...)}``.

    Returns:
        list of dicts, the rows of :func:`summarize` with ``k`` and ``estimator`` added.
    """
    rows = []
    for k in ks:
        methods = {name: estimator_gradient_fn(config, k, name) for name in estimators_to_compare}
        methods.update({label: make(k) for label, make in (extra_gradient_fns or {}).items()})
        for label, fn in methods.items():
            samples = gradient_samples(params, config, x, k, n_repeats=n_repeats, seed=seed, gradient_fn=fn)
            rows += [{"k": int(k), "estimator": label, **row} for row in summarize(samples)]
    return rows
