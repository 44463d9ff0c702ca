"""Adam (Kingma & Ba, 2015) as a pure update on dicts of tensors.

The paper uses beta1 = 0.9, beta2 = 0.999, epsilon = 1e-4. Keeping the optimiser as plain
state (first and second moments m, v and a step counter) makes checkpoints and exact
resume trivial: the whole training state is params + m + v + step.
"""

from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

PAPER_ADAM = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-4}


def zeros_like_params(params: dict) -> dict:
    """Moment variables of the same shapes as the parameters, initialised to 0."""
    return {name: tf.Variable(tf.zeros_like(value), name="adam_" + name.replace("/", "_")) for name, value in params.items()}


def apply_adam(params, grads, m, v, step, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-4):
    """One in-place Adam step on variables: theta -= lr * m_hat / (sqrt(v_hat) + eps).

    Args:
        params, m, v: dicts of tf.Variable with identical keys and shapes.
        grads: dict of gradients (same keys) of the loss to minimise.
        step: the 1-based index of this update (float32 scalar tensor), for bias correction.
        learning_rate: float32 scalar.
    """
    m_scale = 1.0 / (1.0 - beta1**step)  # bias corrections: m_hat = m * m_scale, ...
    v_scale = 1.0 / (1.0 - beta2**step)
    for name, g in grads.items():
        m[name].assign(beta1 * m[name] + (1.0 - beta1) * g)
        v[name].assign(beta2 * v[name] + (1.0 - beta2) * tf.square(g))
        update = m[name] * m_scale / (tf.sqrt(v[name] * v_scale) + epsilon)
        params[name].assign_sub(learning_rate * update)
