"""Architecture, parameters and sampling of iwae_lib.models."""

import numpy as np
import pytest

from iwae_lib import likelihoods, models
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()


def dense(n_in, n_out):
    """Parameters of one affine layer: weight matrix plus bias."""
    return n_in * n_out + n_out


def test_paper_model_one_layer_shapes_and_count():
    config = models.paper_model(1)
    params = models.init_params(config, seed=0)
    expected_shapes = {
        "enc1/hidden0/w": (784, 200), "enc1/hidden1/w": (200, 200),
        "enc1/mean/w": (200, 50), "enc1/logstd/w": (200, 50),
        "dec1/hidden0/w": (50, 200), "dec1/hidden1/w": (200, 200), "dec1/logits/w": (200, 784),
    }
    expected_shapes.update({name[:-1] + "b": (shape[1],) for name, shape in list(expected_shapes.items())})
    assert {name: value.shape for name, value in params.items()} == expected_shapes
    assert all(value.dtype == np.float32 for value in params.values())
    encoder = dense(784, 200) + dense(200, 200) + 2 * dense(200, 50)
    decoder = dense(50, 200) + dense(200, 200) + dense(200, 784)
    assert models.count_params(params) == encoder + decoder == 425_284


def test_paper_model_two_layers_shapes_and_count():
    config = models.paper_model(2)
    params = models.init_params(config, seed=0)
    assert params["enc1/mean/w"].shape == (200, 100)
    assert params["enc2/hidden0/w"].shape == (100, 100)
    assert params["enc2/logstd/w"].shape == (100, 50)
    assert params["dec2/hidden0/w"].shape == (50, 100)
    assert params["dec2/mean/w"].shape == (100, 100)
    assert params["dec2/logstd/b"].shape == (100,)
    assert params["dec1/hidden0/w"].shape == (100, 200)
    assert params["dec1/logits/w"].shape == (200, 784)
    assert len(params) == 2 * (4 + 3 + 4 + 4)  # enc1, dec1, enc2, dec2 layers, w and b each
    enc1 = dense(784, 200) + dense(200, 200) + 2 * dense(200, 100)
    enc2 = dense(100, 100) + dense(100, 100) + 2 * dense(100, 50)
    dec2 = dense(50, 100) + dense(100, 100) + 2 * dense(100, 100)
    dec1 = dense(100, 200) + dense(200, 200) + dense(200, 784)
    assert models.count_params(params) == enc1 + enc2 + dec2 + dec1 == 521_084


def test_paper_model_rejects_other_depths():
    with pytest.raises(ValueError, match="1 or 2"):
        models.paper_model(3)


def test_init_is_glorot_uniform_and_seeded():
    config = models.paper_model(1)
    a, b, c = (models.init_params(config, seed=s) for s in (0, 0, 1))
    limit = np.sqrt(6.0 / (784 + 200))
    w = a["enc1/hidden0/w"]
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit  # uniform fills the whole interval
    assert abs(np.var(w) - limit**2 / 3) < 0.02 * limit**2 / 3
    assert np.all(a["enc1/hidden0/b"] == 0)
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not np.array_equal(a["enc1/hidden0/w"], c["enc1/hidden0/w"])


def test_output_bias_is_logit_of_train_mean():
    config = models.ModelConfig((3,), ((4,),), x_size=5)
    train_mean = np.array([0.5, 0.1, 0.9, 0.0, 1.0])
    params = models.init_params(config, train_mean=train_mean)
    clipped = np.clip(train_mean, 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(params["dec1/logits/b"], np.log(clipped / (1 - clipped)), rtol=1e-5)
    assert params["dec1/logits/b"][0] == 0.0
    with pytest.raises(ValueError, match="train_mean"):
        models.init_params(config, train_mean=np.full(4, 0.5))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(latent_sizes=(), hidden_sizes=()), "at least one stochastic layer"),
        (dict(latent_sizes=(5, 3), hidden_sizes=((10,),)), "one list of hidden layers"),
        (dict(latent_sizes=(0,), hidden_sizes=((10,),)), "positive"),
        (dict(latent_sizes=(5,), hidden_sizes=((10, -1),)), "positive"),
        (dict(latent_sizes=(5,), hidden_sizes=((10,),), x_size=0), "positive"),
    ],
)
def test_model_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.ModelConfig(**kwargs)


def test_model_config_round_trips_through_dict():
    config = models.paper_model(2)
    assert models.ModelConfig.from_dict(config.to_dict()) == config
    assert config.n_stochastic == 2
    # lists (as read from JSON) are normalised to tuples, so configs stay hashable
    assert models.ModelConfig([4], [[3, 2]], 7) == models.ModelConfig((4,), ((3, 2),), 7)


@pytest.fixture(scope="module")
def small_two_layer():
    config = models.ModelConfig((6, 3), ((8,), (5,)), x_size=12)
    params = models.init_params(config, seed=3)
    x = (np.random.default_rng(0).random((4, 12)) < 0.5).astype(np.float32)
    return config, params, x


def test_log_weights_shapes_and_determinism(small_two_layer):
    config, params, x = small_two_layer
    log_w, samples = models.log_weights(params, config, x, 7, np.array([1, 2]))
    assert log_w.shape == (7, 4)
    assert [s.shape for s in samples] == [(7, 4, 6), (7, 4, 3)]
    assert np.all(np.isfinite(log_w.numpy()))
    again, _ = models.log_weights(params, config, x, 7, np.array([1, 2]))
    other, _ = models.log_weights(params, config, x, 7, np.array([1, 3]))
    np.testing.assert_array_equal(log_w.numpy(), again.numpy())
    assert np.all(log_w.numpy() != other.numpy())


def test_log_weights_stop_q_params_changes_no_values(small_two_layer):
    config, params, x = small_two_layer
    seed = np.array([5, 5])
    plain, _ = models.log_weights(params, config, x, 3, seed)
    stopped, _ = models.log_weights(params, config, x, 3, seed, stop_q_params=True)
    np.testing.assert_allclose(plain.numpy(), stopped.numpy(), rtol=1e-6)


def test_reconstruct_and_sample_prior_shapes_and_ranges(small_two_layer):
    config, params, x = small_two_layer
    recon = models.reconstruct(params, config, x).numpy()
    assert recon.shape == (4, 12)
    assert np.all((recon > 0) & (recon < 1))
    probs, latents = models.sample_prior(params, config, 9, np.array([0, 1]))
    assert probs.shape == (9, 12)
    assert np.all((probs.numpy() > 0) & (probs.numpy() < 1))
    assert [h.shape for h in latents] == [(9, 3), (9, 6)]  # h_L first, down to h_1
    again, _ = models.sample_prior(params, config, 9, np.array([0, 1]))
    np.testing.assert_array_equal(probs.numpy(), again.numpy())


def test_sample_prior_top_layer_is_standard_normal():
    config = models.ModelConfig((2,), ((3,),), x_size=4)
    params = models.init_params(config, seed=0)
    _, (h,) = models.sample_prior(params, config, 20000, np.array([3, 4]))
    h = h.numpy()
    # standard errors: 1/sqrt(n) = 0.007 for the mean, sqrt(2/n) = 0.01 for the variance
    np.testing.assert_allclose(h.mean(0), 0.0, atol=0.04)
    np.testing.assert_allclose(h.var(0), 1.0, atol=0.05)


def test_fused_bernoulli_log_prob_matches_tfp_value_and_gradient():
    import tensorflow_probability as tfp

    rng = np.random.default_rng(3)
    logits = tf.constant(rng.normal(scale=6.0, size=(4, 3, 784)), tf.float32)
    x = tf.constant(rng.random((3, 784)) < 0.3, tf.float32)
    weights = tf.constant(rng.normal(size=(4, 3)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        fused = likelihoods.bernoulli_log_prob(logits, x)
        reference = tf.reduce_sum(tfp.distributions.Bernoulli(logits=logits).log_prob(x), -1)
        fused_sum, reference_sum = tf.reduce_sum(fused * weights), tf.reduce_sum(reference * weights)
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-5, atol=2e-3)
    np.testing.assert_allclose(tape.gradient(fused_sum, logits).numpy(), tape.gradient(reference_sum, logits).numpy(),
                               rtol=1e-5, atol=1e-6)
