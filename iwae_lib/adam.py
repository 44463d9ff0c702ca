"""Adam (Kingma & Ba, 2015) as an in-place update on dicts of variables.

The paper uses beta1 = 0.9, beta2 = 0.999, epsilon = 1e-4. With t the 1-based step:

    m <- beta1 m + (1 - beta1) g          m_hat = m / (1 - beta1^t)
    v <- beta2 v + (1 - beta2) g^2        v_hat = v / (1 - beta2^t)
    theta <- theta - lr * m_hat / (sqrt(v_hat) + epsilon)

Keeping the optimiser as plain state (moments m, v and the step counter) makes checkpoints
and exact resume simple: the whole training state is params + m + v + step.
"""

from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

PAPER_ADAM = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-4}


def zeros_like_params(params: dict) -> dict:
    """Moment variables of the same shapes as the parameters, initialised to 0."""
    return {name: tf.Variable(tf.zeros_like(value), name="adam_" + name.replace("/", "_"))
            for name, value in params.items()}


def apply_adam(params, grads, m, v, step, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-4):
    """One in-place Adam step on every variable (the update in the module docstring).

    Uses TensorFlow's fused ``ResourceApplyAdam`` kernel (one op per variable instead of
    about ten, which matters at small k where a step is only a few milliseconds). That
    kernel computes lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps'); passing
    eps' = epsilon * sqrt(1 - beta2^t) makes it exactly the update above.

    Inside a ``tf.function`` every update waits until all of ``grads`` are computed. The
    backward pass still reads a layer's weights (for the gradient of its input) after that
    layer's own gradient exists; an update that ran before that read would first copy the
    weights, since TensorFlow keeps a value that is still to be read. The order changes no
    number; it saves that copy (``benchmarks/README.md``, "Adam after the backward pass").

    Args:
        params, m, v: dicts of tf.Variable with identical keys and shapes.
        grads: dict of gradients (same keys) of the loss to minimise.
        step: the 1-based index of this update t (float32 scalar tensor).
        learning_rate: float32 scalar.
    """
    beta1_power, beta2_power = beta1**step, beta2**step
    eps_hat = epsilon * tf.sqrt(1.0 - beta2_power)
    with tf.control_dependencies(list(grads.values())):  # each waits for all of them
        grads = {name: tf.identity(g) for name, g in grads.items()}
    for name, g in grads.items():
        tf.raw_ops.ResourceApplyAdam(
            var=params[name].handle, m=m[name].handle, v=v[name].handle,
            beta1_power=beta1_power, beta2_power=beta2_power, lr=learning_rate,
            beta1=beta1, beta2=beta2, epsilon=eps_hat, grad=g)


def adam_reference(theta, g, m, v, step, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-4):
    """The same update written out on NumPy arrays: returns new (theta, m, v)."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
    return theta - learning_rate * m_hat / (v_hat**0.5 + epsilon), m, v


