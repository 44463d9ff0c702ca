"""Mixed precision (``precision="bfloat16"``): values close to float32, float32 state, training."""

import numpy as np
import pytest

from iwae_lib import adam, estimators, evaluation, models
from iwae_lib._quiet import import_tensorflow_quietly
from iwae_lib.config import TrainConfig, config_differences
from iwae_lib.training import compile_train_chunk, make_train_chunk

tf = import_tensorflow_quietly()


def plausible_params(config, seed):
    """init_params with the output bias set to the logits of a skewed pixel mean (most
    pixels rarely on, as in MNIST), so that the logits are not all zero. [name -> array]"""
    rng = np.random.default_rng(seed)
    return models.init_params(config, seed=seed, train_mean=np.clip(rng.beta(0.3, 1.5, config.x_size), 0.01, 0.99))


def images(n, x_size, seed):
    """n binary images [n, x_size]: noisy copies of 3 random prototypes (learnable structure)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((3, x_size)) < rng.random((3, 1)) * 0.5
    picked = prototypes[rng.integers(0, 3, n)]
    flips = rng.random((n, x_size)) < 0.05
    return (picked ^ flips).astype(np.float32)


@pytest.fixture(scope="module", params=[1, 2], ids=["one_layer", "two_layers"])
def paper_case(request):
    config = models.paper_model(request.param)
    return config, plausible_params(config, seed=4), images(20, config.x_size, seed=5)


def test_bf16_log_weights_close_to_fp32(paper_case):
    config, params, x = paper_case
    seed = tf.constant([3, 1], tf.int64)
    fp32, _ = models.log_weights(params, config, x, 5, seed)
    bf16, samples = models.log_weights(params, config, x, 5, seed, precision="bfloat16")
    assert bf16.dtype == tf.float32 and all(h.dtype == tf.float32 for h in samples)
    fp32, bf16 = fp32.numpy(), bf16.numpy()
    # Scale-free tolerances: the bf16 error of log w against its Monte Carlo spread over the
    # samples (the noise that training averages anyway). Rounding the matmul operands to 8
    # significant bits gives an rms error of 4% (one layer) and 6% (two layers) of that
    # spread here, and 6% (0.31 nats for a spread of 5 nats) on the recorded k=5 model with
    # MNIST test images. A lost bias or a wrong cast gives many times the spread.
    spread = np.std(fp32, axis=0).mean()
    assert np.sqrt(np.mean((bf16 - fp32) ** 2)) < 0.15 * spread
    # the IWAE bound averaged over the batch: 2% and 3% of the spread here (0.02 nats on the
    # recorded model at k=50)
    bound_fp32 = np.mean(np.log(np.mean(np.exp(fp32 - fp32.max(0)), 0)) + fp32.max(0))
    bound_bf16 = np.mean(np.log(np.mean(np.exp(bf16 - bf16.max(0)), 0)) + bf16.max(0))
    assert abs(bound_bf16 - bound_fp32) < 0.1 * spread


@pytest.mark.parametrize("estimator", ["standard", "stl", "dreg"])
def test_bf16_gradients_close_to_fp32(paper_case, estimator):
    config, params, x = paper_case
    variables = models.as_variables(params)
    seed = tf.constant([8, 2], tf.int64)
    bound32, grads32 = estimators.loss_and_gradients(variables, config, x, 5, seed, "iwae", estimator)
    bound16, grads16 = estimators.loss_and_gradients(variables, config, x, 5, seed, "iwae", estimator,
                                                     precision="bfloat16")
    assert bound16.dtype == tf.float32
    # per-image bounds of this untrained model (~ -850 nats) within 0.2% for one layer
    # (measured ~0.05%) and 1% for two (measured up to 0.45%)
    np.testing.assert_allclose(bound16.numpy(), bound32.numpy(), rtol=2e-3 if config.n_stochastic == 1 else 1e-2)
    # relative error of each parameter's gradient. Measured: at most 2% for one stochastic
    # layer, 12% for two (whose Gaussian p(h1 | h2) amplifies the rounding of its mean and
    # log-std); a sign error or a missing term would give ~100%.
    tolerance = 0.05 if config.n_stochastic == 1 else 0.25
    for name in params:
        assert grads16[name].dtype == tf.float32, name
        g32, g16 = grads32[name].numpy(), grads16[name].numpy()
        relative = np.linalg.norm(g16 - g32) / np.linalg.norm(g32)
        assert relative < tolerance, (name, relative)


def test_fp32_path_is_unchanged_by_the_precision_option(paper_case):
    config, params, x = paper_case
    seed = tf.constant([1, 1], tf.int64)
    default, _ = models.log_weights(params, config, x, 3, seed)
    explicit, _ = models.log_weights(params, config, x, 3, seed, precision="float32")
    np.testing.assert_array_equal(default.numpy(), explicit.numpy())


SMALL = models.ModelConfig((10,), ((64, 64),), x_size=784)


def train_steps(precision, x, steps, k=5, seed=0):
    """Train SMALL with IWAE for ``steps`` Adam steps on the batches of x [S, 20, 784] (cycled);
    returns (params, m, v, per-call mean bounds)."""
    params = models.as_variables(models.init_params(SMALL, seed, x.reshape(-1, 784).mean(0)))
    m, v = adam.zeros_like_params(params), adam.zeros_like_params(params)

    def gradient_fn(params, xb, step_seed):
        return estimators.loss_and_gradients(params, SMALL, xb, k, step_seed, precision=precision)

    chunk = compile_train_chunk(params, m, v, gradient_fn, seed, 20, 784)
    bounds = [float(chunk(x, tf.constant(3e-3), tf.constant(s, tf.int64))) for s in range(0, steps, len(x))]
    return params, m, v, bounds


@pytest.fixture(scope="module")
def trained_pair():
    x = images(400, 784, seed=7).reshape(20, 20, 784)
    return x, {p: train_steps(p, x, 200) for p in ("float32", "bfloat16")}


def test_bf16_training_keeps_float32_parameters_and_adam_moments(trained_pair):
    _, runs = trained_pair
    params, m, v, _ = runs["bfloat16"]
    for group in (params, m, v):
        assert all(isinstance(var, tf.Variable) and var.dtype == tf.float32 for var in group.values())
    # the moments were updated (Adam ran on float32 state)
    assert all(np.any(var.numpy() != 0) for var in v.values())


def test_bf16_training_decreases_the_loss_like_fp32(trained_pair):
    x, runs = trained_pair
    first, last = {}, {}
    for precision, (_, _, _, bounds) in runs.items():
        first[precision], last[precision] = bounds[0], np.mean(bounds[-2:])
        assert np.all(np.isfinite(bounds))
    gain32, gain16 = last["float32"] - first["float32"], last["bfloat16"] - first["bfloat16"]
    assert gain32 > 50  # 200 steps on 3 noisy prototypes: the bound rises by hundreds of nats
    assert abs(gain16 - gain32) < 0.1 * gain32
    # and the trained models score alike in float32 (same held-out images, same samples)
    held_out = images(100, 784, seed=8)
    scores = {p: np.mean(evaluation.log_likelihood({n: var.numpy() for n, var in params.items()}, SMALL, held_out,
                                                   k=50, seed=0, progress=False))
              for p, (params, _, _, _) in runs.items()}
    assert abs(scores["bfloat16"] - scores["float32"]) < 0.02 * abs(scores["float32"])


def test_make_train_chunk_passes_precision():
    x = images(40, 784, seed=9).reshape(2, 20, 784)
    config32, config16 = TrainConfig(k=3), TrainConfig(k=3, precision="bfloat16")
    outs = {}
    for config in (config32, config16):
        params = models.as_variables(models.init_params(models.paper_model(1), 0))
        m, v = adam.zeros_like_params(params), adam.zeros_like_params(params)
        chunk = make_train_chunk(params, m, v, config, dynamic=False)
        outs[config.precision] = (float(chunk(x, tf.constant(1e-3), tf.constant(0, tf.int64))),
                                  params["dec1/logits/w"].numpy())
    # same seed: nearly the same bound, but not bit-identical (bf16 products were used)
    assert abs(outs["bfloat16"][0] - outs["float32"][0]) < 1.0
    assert not np.array_equal(outs["bfloat16"][1], outs["float32"][1])


def test_precision_validation_and_round_trip():
    assert TrainConfig().precision == "float32"
    config = TrainConfig(precision="bfloat16")
    assert TrainConfig.from_dict(config.to_dict()) == config
    for bad in ("float16", "bf16", "fp32"):
        with pytest.raises(ValueError, match="unknown precision"):
            TrainConfig(precision=bad)
    # runs recorded before the option existed count as float32
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "precision"}
    assert config_differences(old, TrainConfig().to_dict()) == []
    assert config_differences(old, config.to_dict()) == ["precision"]
