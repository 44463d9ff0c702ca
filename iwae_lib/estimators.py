"""Gradient estimators for the bounds: standard (reparameterised), STL and DReG.

Write a bound as L = f(log w_1, ..., log w_k) with log w_i = log p(x, h_i) - log q_phi(h_i | x)
and h_i = h(eps_i; phi) reparameterised. The total derivative of log w_i with respect to
the inference network phi has a *path* part (through h_i) and a *score* part
(-d/dphi log q_phi(h) at fixed h), whose expectation is zero.

* ``standard``: the plain reparameterised gradient of L (both parts).
* ``stl``: "sticking the landing" (Roeder et al., 2017): drop the score part, by
  evaluating log q with phi held constant. Unbiased for the ELBO (k=1); for the IWAE bound
  with k > 1 it is biased.
* ``dreg``: doubly reparameterised gradient (Tucker et al., 2019) for the IWAE bound:
  the encoder gets sum_i w~_i^2 d(log w_i)/dphi (path part only), w~ the normalised
  weights; the decoder gets the standard gradient sum_i w~_i d(log w_i)/dtheta. Unbiased,
  with a signal-to-noise ratio that does not decay as k grows.

PIWAE (Rainforth et al., 2018) is the training objective ``"piwae"``: a different bound for
each network, on the same k samples. The generative network follows the IWAE bound (its
gradient is the same for every estimator above), the inference network another bound,
``piwae_encoder`` in PIWAE_ENCODER_OBJECTIVES (MIWAE with ``miwae_groups``, CIWAE with
``ciwae_beta``, or the VAE bound), with the ``standard`` or ``stl`` estimator.

Every estimator here returns gradients of the *loss* -mean_B L (what an optimiser
minimises), as a dict with the same keys as the parameters.
"""

from iwae_lib import models, objectives
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

ESTIMATORS = ("standard", "stl", "dreg")
PIWAE = "piwae"
TRAINING_OBJECTIVES = (*objectives.OBJECTIVES, PIWAE)  # what TrainConfig.objective may be
PIWAE_ENCODER_OBJECTIVES = ("miwae", "ciwae", "vae")


def check_estimator(estimator: str, objective: str):
    """Raise a ValueError a person can act on for an unknown or ill-defined combination."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown gradient estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    if estimator == "dreg" and objective != "iwae":
        raise ValueError(
            f"the DReG estimator is defined here for the IWAE bound only, not {objective!r}; "
            "use 'stl' or 'standard' with this objective"
        )


def check_piwae(encoder_objective: str, estimator: str):
    """Raise a ValueError a person can act on for an impossible PIWAE encoder bound or estimator."""
    if encoder_objective not in PIWAE_ENCODER_OBJECTIVES:
        raise ValueError(f"unknown PIWAE encoder objective {encoder_objective!r}; "
                         f"choose one of {', '.join(PIWAE_ENCODER_OBJECTIVES)}")
    check_estimator(estimator, encoder_objective)


def loss_and_gradients(params, config, x, k, seed, objective="iwae", estimator="standard", precision="float32",
                       piwae_encoder="miwae", **bound_options):
    """Loss and its gradient estimate for one batch.

    Args:
        params: dict of tf.Variable (or tensors watched by the caller).
        config: models.ModelConfig.
        x: [B, x_size] binary images (pixel levels 0..255 for a discretized-logistic model).
        k: samples per image.
        seed: stateless seed, shape [2].
        objective: one of TRAINING_OBJECTIVES; estimator: one of ESTIMATORS.
        precision: ``"float32"`` or ``"bfloat16"`` (mixed precision: bfloat16 matrix
            products, float32 log-weights, bound, loss and gradients; see
            :func:`models.log_weights`).
        piwae_encoder: the inference network's bound when ``objective`` is "piwae"
            (:func:`piwae_loss_and_gradients`); ignored otherwise.
        bound_options: ``miwae_groups`` / ``ciwae_beta`` for those objectives.

    Returns:
        (bound [B] per-image value of the bound, grads dict name -> gradient of
        -mean(bound), same shapes as params). For PIWAE the bound is the IWAE bound.
    """
    if objective == PIWAE:
        return piwae_loss_and_gradients(params, config, x, k, seed, piwae_encoder, estimator, precision,
                                        **bound_options)
    check_estimator(estimator, objective)
    bound_of = objectives.bound_fn(objective, **bound_options)
    names = list(params)
    variables = [params[n] for n in names]
    with tf.GradientTape(persistent=estimator == "dreg", watch_accessed_variables=False) as tape:
        tape.watch(variables)
        log_w, _ = models.log_weights(params, config, x, k, seed, stop_q_params=estimator != "standard",
                                      precision=precision)
        bound = bound_of(log_w)
        loss = -tf.reduce_mean(bound)
    if estimator != "dreg":
        grads = tape.gradient(loss, variables)
    else:
        # d loss / d log w_i = -w~_i / B. The decoder uses it as is; the encoder's path
        # term is weighted once more by w~_i, giving the w~_i^2 of DReG.
        upstream = tape.gradient(loss, log_w)
        weights = tf.stop_gradient(objectives.normalized_weights(log_w))
        is_encoder = [n.startswith("enc") for n in names]
        dec_vars = [v for v, e in zip(variables, is_encoder) if not e]
        enc_vars = [v for v, e in zip(variables, is_encoder) if e]
        dec_grads = iter(tape.gradient(log_w, dec_vars, output_gradients=upstream))
        enc_grads = iter(tape.gradient(log_w, enc_vars, output_gradients=upstream * weights))
        grads = [next(enc_grads) if e else next(dec_grads) for e in is_encoder]
        del tape
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    return bound, dict(zip(names, grads))


def piwae_loss_and_gradients(params, config, x, k, seed, encoder_objective="miwae", estimator="standard",
                             precision="float32", **bound_options):
    """PIWAE's gradient: the decoder follows the IWAE bound, the encoder another bound.

    One set of k samples (one ``models.log_weights`` call) feeds both bounds. With
    ``estimator`` "stl" the log-weights hold log q's parameters constant; that changes
    only the encoder's gradient, since log q does not involve the decoder.

    Args:
        params: dict of tf.Variable (or tensors watched by the caller).
        config: models.ModelConfig; x: [B, x_size] images; k: samples per image;
            seed: stateless seed [2].
        encoder_objective: the encoder's bound, one of PIWAE_ENCODER_OBJECTIVES.
        estimator: the encoder's gradient estimator, "standard" or "stl".
        precision: as in :func:`loss_and_gradients`.
        bound_options: ``miwae_groups`` / ``ciwae_beta`` of the encoder's bound.

    Returns:
        (IWAE bound [B], grads dict: ``enc*`` entries are gradients of -mean(encoder
        bound), ``dec*`` entries gradients of -mean(IWAE bound)).
    """
    check_piwae(encoder_objective, estimator)
    encoder_bound_of = objectives.bound_fn(encoder_objective, **bound_options)
    names = list(params)
    is_encoder = [n.startswith("enc") for n in names]
    enc_vars = [params[n] for n, e in zip(names, is_encoder) if e]
    dec_vars = [params[n] for n, e in zip(names, is_encoder) if not e]
    with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
        tape.watch(enc_vars + dec_vars)
        log_w, _ = models.log_weights(params, config, x, k, seed, stop_q_params=estimator != "standard",
                                      precision=precision)
        bound = objectives.iwae_bound(log_w)
        decoder_loss = -tf.reduce_mean(bound)
        encoder_loss = -tf.reduce_mean(encoder_bound_of(log_w))
    enc_grads = iter(tape.gradient(encoder_loss, enc_vars))
    dec_grads = iter(tape.gradient(decoder_loss, dec_vars))
    del tape
    grads = [next(enc_grads) if e else next(dec_grads) for e in is_encoder]
    grads = [tf.zeros_like(params[n]) if g is None else g for g, n in zip(grads, names)]
    return bound, dict(zip(names, grads))
