"""PIWAE and the 8-bit model train through ``training.train`` like every other run.

Exact resume from a mid-epoch checkpoint (as test_training.py checks for the IWAE), the
gradient each network follows under PIWAE, the 8-bit model's data (gray levels, never
binarized) and its final evaluation in nats and bits per pixel, and their configuration
errors. The runs are test_training.py's TINY ones: 400 MNIST images, 4 epochs of 20 steps.
"""

import dataclasses
import math

import numpy as np
import pytest

from iwae_lib import checkpoints, cli, data, evaluation, likelihoods, models, numpy_reference, training
from iwae_lib.run_dir import checkpoint_position
from iwae_lib._quiet import import_tensorflow_quietly
from iwae_lib.config import TrainConfig
from test_training import TINY, StopAfterCalls, assert_same_run, load_weights

tf = import_tensorflow_quietly()

VARIANTS = {
    "piwae": dict(TINY, objective="piwae", k=4, miwae_groups=2),
    "8bit": dict(TINY, likelihood="discretized_logistic"),
}


@pytest.fixture(scope="module")
def mnist(real_data_dir):
    return data.load_dataset("mnist")


@pytest.fixture(scope="module")
def mnist_test_levels(real_data_dir):
    return likelihoods.to_levels(data.load_mnist("test")[0])


@pytest.fixture(scope="module")
def variant_run(mnist, tmp_path_factory):
    """``variant_run(name)``: the VARIANTS[name] run trained without interruption, (run dir, metrics)."""
    done = {}

    def get(name):
        if name not in done:
            out = tmp_path_factory.mktemp(name)
            done[name] = out, training.train(TrainConfig(**VARIANTS[name]), out, progress=False, dataset=mnist)
        return done[name]

    return get


# ----------------------------------------------------------------------------- exact resume


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_resume_from_a_mid_epoch_checkpoint_is_bit_identical(variant, tmp_path, mnist, variant_run, monkeypatch):
    reference_dir, _ = variant_run(variant)
    out = tmp_path / "run"
    # 4 calls per epoch: the 7th is the third call of epoch 2, after a checkpoint 10 steps into it
    monkeypatch.setattr(training, "make_train_chunk", StopAfterCalls(7))
    with pytest.raises(KeyboardInterrupt):
        training.train(TrainConfig(**VARIANTS[variant]), out, progress=False, dataset=mnist)
    assert checkpoint_position(out) == {"epoch": 1, "step_in_epoch": 10, "global_step": 30}
    monkeypatch.undo()
    training.train(TrainConfig(**VARIANTS[variant]), out, progress=False, dataset=mnist)
    assert_same_run(out, reference_dir)
    if variant == "8bit":
        got = checkpoints.load_json(out / "metrics.json")
        assert got["test_bits_per_dim"] == checkpoints.load_json(reference_dir / "metrics.json")["test_bits_per_dim"]


# ----------------------------------------------------------------------------- PIWAE


def test_a_piwae_step_moves_the_decoder_like_iwae_and_the_encoder_like_miwae(tmp_path, mnist):
    """One Adam step from the same start: PIWAE's decoder weights are those of an IWAE run,
    its encoder weights those of a MIWAE(2, 2) run (epsilon 1 keeps the step proportional
    to the gradient, so different gradients give visibly different weights)."""
    one_step = dict(latent_sizes=(3,), hidden_sizes=((8,),), train_size=20, batch_size=20, schedule="constant",
                    epochs=1, k=4, learning_rate=0.1, epsilon=1.0, eval_every=0, final_k=2, final_test_size=20,
                    final_train_size=20, seed=5)
    weights = {}
    for name, options in {"piwae": dict(objective="piwae", miwae_groups=2), "iwae": dict(objective="iwae"),
                          "miwae": dict(objective="miwae", miwae_groups=2)}.items():
        metrics = training.train(TrainConfig(**one_step, **options), tmp_path / name, progress=False, dataset=mnist)
        assert metrics["global_steps"] == 1
        weights[name] = load_weights(tmp_path / name)
    for name, value in weights["piwae"].items():
        same_as = weights["miwae"] if name.startswith("enc") else weights["iwae"]
        np.testing.assert_allclose(value, same_as[name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert np.abs(weights["iwae"]["enc1/mean/w"] - weights["miwae"]["enc1/mean/w"]).max() > 1e-4
    assert np.abs(weights["iwae"]["dec1/logits/w"] - weights["miwae"]["dec1/logits/w"]).max() > 1e-4


def test_piwae_records_the_iwae_bound_and_its_options(variant_run):
    _, metrics = variant_run("piwae")
    config = TrainConfig(**VARIANTS["piwae"])
    assert metrics["config"] == config.to_dict()
    assert (metrics["config"]["objective"], metrics["config"]["piwae_encoder"]) == ("piwae", "miwae")
    history = metrics["history"]
    assert len(history) == 4 and all(np.isfinite(e["train_bound"]) and np.isfinite(e["test_bound"]) for e in history)
    assert history[-1]["train_bound"] > history[0]["train_bound"]
    assert -250 < metrics["test_log_likelihood"] < -90


# ----------------------------------------------------------------------------- the 8-bit model


@pytest.mark.slow
def test_level_splits_hold_the_gray_levels_of_the_same_images(real_data_dir):
    ds = data.load_dataset("mnist", validation_size=50, seed=1)
    levels = likelihoods.level_splits(ds)
    raw_train, raw_test = data.load_mnist("train")[0], data.load_mnist("test")[0]
    assert not levels.dynamic and levels.train.shape == ds.train.shape and levels.test.shape == (10000, 784)
    np.testing.assert_array_equal(levels.train / 255, raw_train[np.setdiff1d(np.arange(60000), ds.valid_indices)])
    np.testing.assert_array_equal(levels.valid / 255, raw_train[ds.valid_indices])
    np.testing.assert_array_equal(levels.test / 255, raw_test)
    assert set(np.unique(levels.test)) <= set(range(256)) and levels.test.max() == 255
    np.testing.assert_array_equal(levels.train_mean, ds.train_mean)
    with pytest.raises(ValueError, match="gray levels of the mnist data set"):
        likelihoods.level_splits(dataclasses.replace(ds, name="omniglot"))


def test_the_8bit_run_is_evaluated_on_gray_levels_in_nats_and_bits_per_dim(variant_run, mnist, mnist_test_levels):
    out, metrics = variant_run("8bit")
    config = TrainConfig(**VARIANTS["8bit"])
    model = config.model_config()
    record = checkpoints.load_json(out / "config.json")
    assert record["model"] == metrics["model"] == {**models.paper_model(1).to_dict(), "likelihood": "discretized_logistic"}
    assert models.ModelConfig.from_dict(record["model"]) == model
    weights = load_weights(out)
    assert weights["dec1/logits/w"].shape == (200, 2 * 784) and weights["dec1/logits/b"].shape == (2 * 784,)

    # the recorded estimates are those of the pixel levels, test and (not binarized) train images
    test_ll = evaluation.log_likelihood(weights, model, mnist_test_levels[:100], k=20, seed=3 + 2, progress=False)
    assert float(np.mean(test_ll)) == pytest.approx(metrics["test_log_likelihood"], abs=1e-9)
    train_ll = evaluation.log_likelihood(weights, model, likelihoods.to_levels(mnist.train[:100]), k=20, seed=3 + 3,
                                         progress=False)
    assert float(np.mean(train_ll)) == pytest.approx(metrics["train_log_likelihood"], abs=1e-9)
    for split in ("test", "train"):
        bits = metrics[f"{split}_bits_per_dim"]
        assert bits == pytest.approx(-metrics[f"{split}_log_likelihood"] / (784 * math.log(2.0)), rel=1e-12)
        assert 0 < bits < 8, "no better than a uniform distribution over 256 levels"
    assert "valid_bits_per_dim" not in metrics

    # active units: the encoder sees intensities, as a Bernoulli model's encoder would
    assert len(metrics["active_units"]) == 1 and 0 <= metrics["active_units"][0] <= 50
    intensities = data.load_mnist("test")[0]
    as_bernoulli = evaluation.active_units(weights, dataclasses.replace(model, likelihood="bernoulli"), intensities,
                                           seed=3 + 4)
    np.testing.assert_allclose(metrics["active_unit_variances"][0], as_bernoulli["variances"][0], rtol=1e-6)
    assert metrics["active_units"] == as_bernoulli["active"]


def test_numpy_reference_agrees_with_tensorflow_on_the_8bit_model(variant_run, mnist_test_levels):
    out, _ = variant_run("8bit")
    model_dict = checkpoints.load_json(out / "config.json")["model"]
    model = models.ModelConfig.from_dict(model_dict)
    weights = load_weights(out)
    x = mnist_test_levels[:8]
    seed = tf.constant([5, 7], tf.int64)
    log_w_tf, _ = models.log_weights(weights, model, x, 30, seed)
    noise = tf.random.stateless_normal([30, 8, 50], seed=tf.random.experimental.stateless_fold_in(seed, 1))
    log_w_np = numpy_reference.log_weights_from_noise_np(numpy_reference.load_weights(out / "weights.npz"), model_dict,
                                                         x, [noise.numpy()])
    assert log_w_np.shape == (30, 8)
    np.testing.assert_allclose(log_w_np, log_w_tf.numpy(), rtol=1e-5, atol=2e-2)


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("options, message", [
    ({"objective": "piwae"}, "PIWAE with piwae_encoder 'miwae' needs miwae_groups > 1"),
    ({"objective": "piwae", "piwae_encoder": "iwae"}, "unknown PIWAE encoder objective 'iwae'"),
    ({"objective": "piwae", "k": 4, "miwae_groups": 2, "estimator": "dreg"}, "DReG estimator is defined here"),
    ({"objective": "piwae", "k": 6, "miwae_groups": 4}, "miwae_groups must divide k"),
    ({"objective": "iwae", "piwae_encoder": "vae"}, "piwae_encoder applies to objective 'piwae' only"),
    ({"likelihood": "gaussian"}, "unknown likelihood 'gaussian'"),
    ({"likelihood": "discretized_logistic", "dataset": "binarized_mnist"}, "gray levels of the 'mnist' data set"),
    ({"likelihood": "discretized_logistic", "dataset": "omniglot"}, "gray levels of the 'mnist' data set"),
    ({"likelihood": "discretized_logistic", "n_stochastic": 2}, "has one stochastic layer"),
])
def test_invalid_piwae_and_8bit_configurations_are_refused(options, message):
    with pytest.raises(ValueError) as info:
        TrainConfig(**options)
    assert message in str(info.value)


def test_the_command_line_has_flags_for_piwae_and_the_8bit_model(tmp_path):
    def parse(*flags):
        return cli.build_train_config(cli.make_parser().parse_args(["train", "--out", str(tmp_path / "run"), *flags]))

    config = parse("--objective", "piwae", "--piwae-encoder", "ciwae", "--ciwae-beta", "0.25", "--k", "8")
    assert (config.objective, config.piwae_encoder, config.ciwae_beta, config.k) == ("piwae", "ciwae", 0.25, 8)
    assert parse("--likelihood", "discretized_logistic").model_config().likelihood == "discretized_logistic"
    assert cli.main(["train", "--out", str(tmp_path / "run"), "--objective", "piwae"]) == cli.EXIT_USAGE
