"""Variational bounds as pure functions of importance log-weights.

All functions take ``log_w`` of shape [k, B] (k samples for each of B images, as returned
by :func:`iwae_lib.models.log_weights`) and return one bound per image, shape [B].

    VAE bound (k-sample ELBO):  L_VAE  = 1/k sum_i log w_i
    IWAE bound:                 L_k    = log 1/k sum_i w_i          (Burda et al., eq. 8)
    MIWAE(M, K):                mean over M groups of the IWAE bound of K samples
    CIWAE(beta):                beta L_VAE + (1 - beta) L_k         (Rainforth et al., 2018)

Both VAE and IWAE bounds are below log p(x); L_k rises with k and tends to log p(x).
"""

from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

OBJECTIVES = ("vae", "iwae", "miwae", "ciwae")


def vae_bound(log_w):
    """The k-sample ELBO: mean of log w over samples. [k, B] -> [B]."""
    return tf.reduce_mean(log_w, axis=0)


def iwae_bound(log_w):
    """The IWAE bound log mean_k w_k, computed stably with logsumexp. [k, B] -> [B]."""
    k = tf.cast(tf.shape(log_w)[0], log_w.dtype)
    return tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(k)


def miwae_bound(log_w, n_groups: int):
    """MIWAE: the k samples split into ``n_groups`` groups of k / n_groups; the mean of
    the groups' IWAE bounds. [k, B] -> [B]."""
    k = log_w.shape[0]
    if k is not None and k % n_groups:
        raise ValueError(f"MIWAE needs k divisible by the number of groups: k={k}, groups={n_groups}")
    grouped = tf.reshape(log_w, tf.concat([[n_groups, -1], tf.shape(log_w)[1:]], 0))
    return tf.reduce_mean(iwae_bound(tf.transpose(grouped, [1, 0, 2])), axis=0)


def ciwae_bound(log_w, beta: float):
    """CIWAE: the convex combination beta * VAE + (1 - beta) * IWAE. [k, B] -> [B]."""
    return beta * vae_bound(log_w) + (1.0 - beta) * iwae_bound(log_w)


def normalized_weights(log_w):
    """Self-normalised importance weights w_i / sum_j w_j along the sample axis. [k, B]."""
    return tf.nn.softmax(log_w, axis=0)


def bound_fn(objective: str, miwae_groups: int = 1, ciwae_beta: float = 0.5):
    """The bound function [k, B] -> [B] for an objective name in ``OBJECTIVES``."""
    if objective == "vae":
        return vae_bound
    if objective == "iwae":
        return iwae_bound
    if objective == "miwae":
        return lambda log_w: miwae_bound(log_w, miwae_groups)
    if objective == "ciwae":
        if not 0.0 <= ciwae_beta <= 1.0:
            raise ValueError(f"CIWAE needs 0 <= beta <= 1, got {ciwae_beta}")
        return lambda log_w: ciwae_bound(log_w, ciwae_beta)
    raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")

