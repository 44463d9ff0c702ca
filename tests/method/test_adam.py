"""The fused Adam update equals the textbook update with the paper's hyper-parameters."""

import numpy as np
import pytest

from iwae_lib import adam
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()


@pytest.mark.parametrize("learning_rate", [1e-3, 3e-2])
def test_fused_adam_matches_reference(learning_rate):
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(7, 3)).astype(np.float32)
    params = {"w": tf.Variable(theta), "b": tf.Variable(theta[0])}
    m, v = adam.zeros_like_params(params), adam.zeros_like_params(params)
    ref = {n: (p.numpy().astype(np.float64), 0.0, 0.0) for n, p in params.items()}
    for step in range(1, 201):
        grads = {n: rng.normal(size=p.shape).astype(np.float32) * (0.01 if step % 2 else 1.0)
                 for n, p in params.items()}
        adam.apply_adam(params, {n: tf.constant(g) for n, g in grads.items()}, m, v,
                        tf.constant(float(step)), tf.constant(learning_rate), **adam.PAPER_ADAM)
        ref = {n: adam.adam_reference(*ref[n][:1], grads[n], *ref[n][1:], step, learning_rate, **adam.PAPER_ADAM)
               for n in params}
    for n, p in params.items():
        np.testing.assert_allclose(p.numpy(), ref[n][0], rtol=0, atol=2e-5 * learning_rate / 1e-3)
        np.testing.assert_allclose(m[n].numpy(), ref[n][1], rtol=1e-4, atol=1e-6)


def test_epsilon_enters_after_bias_correction():
    """At step 1 with a tiny gradient g, the update is lr * g / (|g| + eps), not lr * sign(g)."""
    params = {"w": tf.Variable([0.0])}
    m, v = adam.zeros_like_params(params), adam.zeros_like_params(params)
    g = 1e-4
    adam.apply_adam(params, {"w": tf.constant([g])}, m, v, tf.constant(1.0), tf.constant(1.0), epsilon=1e-4)
    np.testing.assert_allclose(params["w"].numpy(), [-g / (g + 1e-4)], rtol=1e-4)


def test_second_moments_started_at_one_shrink_the_first_steps():
    """Second moments started at 1 (``adam_v_init=1``): at step 1 v_hat is
    (beta2 + (1 - beta2) g^2) / (1 - beta2), about 1000, so the first update is about
    lr * g / 31.6 instead of lr * sign(g). The fused update agrees with the closed form."""
    from iwae_lib import training
    from iwae_lib.config import TrainConfig

    config = TrainConfig(adam_v_init=1.0, train_size=20, epochs=8)
    _, m0, v0, *_ = training._fresh_state(config, config.model_config(), None)
    assert all(np.all(v == 1.0) for v in v0.values()) and all(np.all(m == 0.0) for m in m0.values())
    params = {"w": tf.Variable([0.0])}
    m = adam.zeros_like_params(params)
    v = {"w": tf.Variable([1.0])}
    g, beta2 = 0.5, 0.999
    adam.apply_adam(params, {"w": tf.constant([g])}, m, v, tf.constant(1.0), tf.constant(1e-3), beta2=beta2)
    v_hat = (beta2 + (1 - beta2) * g * g) / (1 - beta2)
    expected = -1e-3 * g / (np.sqrt(v_hat) + 1e-4)
    np.testing.assert_allclose(params["w"].numpy(), [expected], rtol=1e-4)
    assert abs(expected) < 1e-3 / 60  # a sixtieth of the textbook first step, lr * sign(g)


def test_updates_wait_for_every_gradient():
    """In a compiled step every gradient is an ancestor of every update, so no update runs
    while the backward pass may still read the weights it changes (an update then would
    copy them first; the order changes no number)."""
    params = {"w1": tf.Variable(np.ones((3, 5), np.float32)), "w2": tf.Variable(np.ones((5, 2), np.float32))}
    m, v = adam.zeros_like_params(params), adam.zeros_like_params(params)
    gradient_ops = []

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.tanh(x @ params["w1"]) @ params["w2"])  # d/dw1 reads w2
        grads = tape.gradient(loss, params)
        gradient_ops.extend(g.op for g in grads.values())
        adam.apply_adam(params, grads, m, v, tf.constant(1.0), tf.constant(1e-3))

    graph = step.get_concrete_function(tf.TensorSpec([4, 3], tf.float32)).graph
    updates = [op for op in graph.get_operations() if op.type == "ResourceApplyAdam"]
    assert len(updates) == 2 and len(set(gradient_ops)) == 2

    def ancestors(op):
        seen, todo = set(), [op]
        while todo:
            current = todo.pop()
            for parent in [t.op for t in current.inputs] + list(current.control_inputs):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    for op in updates:
        assert set(gradient_ops) <= ancestors(op), op.name
