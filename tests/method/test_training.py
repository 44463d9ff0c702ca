"""Training runs: exact resume (after kill -9, Ctrl-C and mid-epoch), the run directory,
early stopping, a real learning run, and configuration errors.

All runs are tiny (a few hundred MNIST images, the paper's one-layer architecture); the
MNIST splits are loaded once per module and passed to ``training.train(dataset=...)``.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from iwae_lib import checkpoints, cli, data, evaluation, models, run_dir, training
from iwae_lib.run_dir import (CHECKPOINT_FILE, EVAL_SEED_OFFSETS, TRAIN_EVAL_BINARIZATION_SEED, checkpoint_position,
                              load_checkpoint, prepare_run_dir)
from iwae_lib._quiet import import_tensorflow_quietly
from iwae_lib.config import TrainConfig

tf = import_tensorflow_quietly()

REPO_ROOT = Path(__file__).resolve().parents[2]

# 400 images / batch 20 = 20 steps per epoch, 4 calls of 5 steps, a checkpoint after each call.
TINY = dict(dataset="mnist", train_size=400, batch_size=20, schedule="constant", epochs=4, k=5,
            steps_per_call=5, eval_every=1, eval_size=100, final_k=20, final_test_size=100,
            final_train_size=100, checkpoint_seconds=0.0, seed=3)
METRICS_KEYS = {"finished", "config", "model", "seed", "epochs_completed", "total_epochs", "global_steps",
                "stopped_early", "selected_epoch", "test_log_likelihood", "test_log_likelihood_stderr",
                "test_images", "train_log_likelihood", "train_images", "final_k", "active_units",
                "active_unit_variances", "history", "wall_seconds", "environment", "training_sessions", "weights",
                "valid_log_likelihood", "valid_log_likelihood_stderr", "valid_images", "weights_kind"}
# The same tiny run with a warm-up + linear-decay schedule and a moving average of the weights.
TINY_AVERAGED = dict(TINY, schedule="linear_decay", learning_rate=3e-3, warmup_epochs=1.5, ema_decay=0.9)


@pytest.fixture(scope="module")
def mnist(real_data_dir):
    return data.load_dataset("mnist")


@pytest.fixture(scope="module")
def reference_run(mnist, tmp_path_factory):
    """The TINY configuration trained without interruption: (run dir, metrics)."""
    out = tmp_path_factory.mktemp("reference")
    metrics = training.train(TrainConfig(**TINY), out, progress=False, dataset=mnist)
    return out, metrics


def load_weights(run_dir):
    return checkpoints.load_arrays(Path(run_dir) / "weights.npz")


def assert_same_run(run_dir, reference_dir):
    """Bit-identical weights and identical learning curves and final estimates."""
    weights, expected = load_weights(run_dir), load_weights(reference_dir)
    assert sorted(weights) == sorted(expected)
    for name in expected:
        assert np.array_equal(weights[name], expected[name]), f"{name} differs from the uninterrupted run"
    got = checkpoints.load_json(Path(run_dir) / "metrics.json")
    ref = checkpoints.load_json(Path(reference_dir) / "metrics.json")
    for key in ("train_bound", "test_bound", "learning_rate", "epoch"):
        assert [e.get(key) for e in got["history"]] == [e.get(key) for e in ref["history"]], key
    for key in ("test_log_likelihood", "train_log_likelihood", "active_units", "global_steps", "epochs_completed"):
        assert got[key] == ref[key], key
    starts = [session["from_step"] for session in got["training_sessions"]]
    assert starts[0] == 0 and starts == sorted(starts) and len(starts) >= 2, "each resume is recorded"


# ----------------------------------------------------------------------------- exact resume


def cli_train_command(out, options):
    args = [sys.executable, "-m", "iwae_lib", "train", "--out", str(out), "--no-progress"]
    for name, value in options.items():
        args += [cli.flag_name(name), str(value)]
    return args


def wait_for_checkpoint(process, out, after_step, timeout=180.0):
    """Poll until the run's checkpoint is past global step ``after_step``; return its position."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        position = checkpoint_position(out)
        if position is not None and position["global_step"] > after_step:
            return position
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the run ended (status {process.returncode}) before a new checkpoint: {err[-2000:]}")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no checkpoint past step {after_step} within {timeout} s")


@pytest.fixture
def start_process():
    """Popen for the test; processes still running at teardown are killed."""
    started = []

    def start(command, **kwargs):
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.slow
def test_resume_after_kill_9_and_ctrl_c_is_bit_identical(tmp_path, reference_run, start_process):
    """kill -9 mid-run, resume, Ctrl-C, resume again: same weights and metrics as one go
    (three fresh processes, ~30 s)."""
    out = tmp_path / "run"
    command = cli_train_command(out, TINY)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    total_steps = TINY["epochs"] * TINY["train_size"] // TINY["batch_size"]

    first = start_process(command, env=env)
    wait_for_checkpoint(first, out, after_step=0)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    assert first.returncode == -signal.SIGKILL
    killed_at = checkpoint_position(out)
    assert not (out / "metrics.json").exists() and killed_at["global_step"] < total_steps

    second = start_process(command + ["--resume"], env=env)
    wait_for_checkpoint(second, out, after_step=killed_at["global_step"])
    second.send_signal(signal.SIGINT)
    _, err = second.communicate(timeout=120)
    if second.returncode == 0:
        pytest.fail("the resumed run finished before Ctrl-C arrived; make TINY longer")
    assert second.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    interrupted_at = checkpoint_position(out)
    assert interrupted_at["global_step"] > killed_at["global_step"]

    third = subprocess.run([sys.executable, "-m", "iwae_lib", "train", "--out", str(out), "--resume", "--no-progress"],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert_same_run(out, reference_run[0])


class StopAfterCalls:
    """Wraps training.make_train_chunk so that call number ``n`` raises KeyboardInterrupt
    before it runs or, with ``signum``, runs and then the process receives ``signum`` (as
    from Ctrl-C or ``kill``)."""

    def __init__(self, n, signum=None):
        self.n, self.signum, self.calls = n, signum, 0
        self.original = training.make_train_chunk

    def __call__(self, *args, **kwargs):
        chunk = self.original(*args, **kwargs)

        def counted(*chunk_args):
            self.calls += 1
            if self.calls == self.n and self.signum is None:
                raise KeyboardInterrupt
            result = chunk(*chunk_args)
            if self.calls == self.n:
                os.kill(os.getpid(), self.signum)
            return result

        return counted


def test_resume_from_a_mid_epoch_checkpoint_equals_the_uninterrupted_run(tmp_path, mnist, reference_run, monkeypatch):
    out = tmp_path / "run"
    # 4 calls per epoch: call 7 is the third call of epoch 2; the checkpoint before it
    # was written after call 6, i.e. 10 steps into epoch 2.
    monkeypatch.setattr(training, "make_train_chunk", StopAfterCalls(7))
    with pytest.raises(KeyboardInterrupt):
        training.train(TrainConfig(**TINY), out, progress=False, dataset=mnist)
    assert checkpoint_position(out) == {"epoch": 1, "step_in_epoch": 10, "global_step": 30}
    progress = checkpoints.load_json(out / "progress.json")
    assert progress["epochs_completed"] == 1 and len(progress["history"]) == 1
    monkeypatch.undo()
    training.train(TrainConfig(**TINY), out, progress=False, dataset=mnist)
    assert_same_run(out, reference_run[0])


@pytest.mark.parametrize("signum, call", [(signal.SIGINT, 7), (signal.SIGTERM, 8)])
def test_a_signal_checkpoints_after_the_call_under_way_and_resumes_exactly(tmp_path, mnist, reference_run,
                                                                          monkeypatch, signum, call):
    """No periodic checkpoint (checkpoint_seconds huge): the signal alone writes one, after
    call 7 (15 steps into epoch 2) or call 8 (the end of epoch 2, after its evaluation)."""
    config = TrainConfig(**dict(TINY, checkpoint_seconds=1e9))
    out = tmp_path / "run"
    monkeypatch.setattr(training, "make_train_chunk", StopAfterCalls(call, signum))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="checkpoint written"):
        training.train(config, out, progress=False, dataset=mnist)
    expected = {"epoch": 1, "step_in_epoch": 15, "global_step": 35} if call == 7 else \
        {"epoch": 2, "step_in_epoch": 0, "global_step": 40}
    assert checkpoint_position(out) == expected
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # given back
    monkeypatch.undo()
    training.train(config, out, progress=False, dataset=mnist)
    assert_same_run(out, reference_run[0])


def test_a_second_trainer_of_the_same_run_stops_with_a_clear_error(tmp_path, mnist):
    """While one process holds a run (here: this test, by the same lock), training it again
    fails before touching anything; once released, the run trains."""
    config = TrainConfig(**dict(TINY, epochs=1))
    out = prepare_run_dir(tmp_path / "run", config)
    with checkpoints.exclusive_run(out):
        with pytest.raises(checkpoints.RunInUse, match=rf"another process \(pid {os.getpid()}\).*--resume"):
            training.train(config, out, progress=False, dataset=mnist)
        assert not (out / CHECKPOINT_FILE).exists()
    metrics = training.train(config, out, progress=False, dataset=mnist)
    assert metrics["epochs_completed"] == 1


@pytest.fixture(scope="module")
def averaged_reference_run(mnist, tmp_path_factory):
    out = tmp_path_factory.mktemp("averaged_reference")
    metrics = training.train(TrainConfig(**TINY_AVERAGED), out, progress=False, dataset=mnist)
    return out, metrics


def test_resume_with_a_moving_average_and_linear_decay_equals_the_uninterrupted_run(
        tmp_path, mnist, averaged_reference_run, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(training, "make_train_chunk", StopAfterCalls(7))
    with pytest.raises(KeyboardInterrupt):
        training.train(TrainConfig(**TINY_AVERAGED), out, progress=False, dataset=mnist)
    monkeypatch.undo()
    training.train(TrainConfig(**TINY_AVERAGED), out, progress=False, dataset=mnist)
    assert_same_run(out, averaged_reference_run[0])


def test_the_kept_weights_are_the_moving_average(averaged_reference_run):
    out, metrics = averaged_reference_run
    params, _, _, _, _, ema = load_checkpoint(out / CHECKPOINT_FILE)
    weights = load_weights(out)
    assert metrics["weights_kind"] == "final moving average"
    for name in weights:
        assert np.array_equal(weights[name], ema[name])
    assert all(not np.array_equal(weights[n], params[n]) for n in weights)
    # the recorded per-epoch rates follow the warm-up and the linear decay (peak 3e-3, 4 epochs)
    rates = [e["learning_rate"] for e in metrics["history"]]
    expected = [3e-3 * min(1.0, (e + 0.5) / 1.5) * (1 - (e + 0.5) / 4) for e in range(4)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)


def test_held_out_curves_use_eval_k_samples(tmp_path, mnist):
    """With eval_k the monitoring bounds are L_{eval_k}, not L_k: the last epoch's entry is
    the same evaluation of the final weights, and it lies above their k=5 bound."""
    config = TrainConfig(**dict(TINY, epochs=1, eval_k=200))
    metrics = training.train(config, tmp_path / "run", progress=False, dataset=mnist)
    weights, model = load_weights(tmp_path / "run"), config.model_config()
    seed = config.seed + EVAL_SEED_OFFSETS["valid"]
    recorded = metrics["history"][-1]["test_bound"]
    monitored = mnist.test[training.monitor_rows(len(mnist.test), config.eval_size)]
    assert recorded == pytest.approx(training.heldout_bound(weights, model, monitored, 200, seed), abs=1e-9)
    assert recorded > training.heldout_bound(weights, model, monitored, 5, seed) + 1.0


def test_the_monitored_test_images_spread_over_a_file_sorted_by_class():
    """A test file sorted by class (as Larochelle's binarized MNIST test file is): the rows
    scored during training take every class in its share, not the first classes only."""
    labels = np.repeat(np.arange(10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    rows = training.monitor_rows(len(labels), 2000)
    assert rows.shape == (2000,) and len(np.unique(rows)) == 2000
    assert rows[0] == 0 and rows[-1] == 9995 and np.all(np.diff(rows) == 5)
    shares = np.bincount(labels[rows], minlength=10) / 2000
    np.testing.assert_allclose(shares, np.bincount(labels) / len(labels), atol=1 / 2000)
    np.testing.assert_array_equal(training.monitor_rows(150, 2000), np.arange(150))  # fewer images: all of them
    np.testing.assert_array_equal(training.monitor_rows(9, 3), [0, 3, 6])


def test_the_moving_average_update_matches_its_closed_form():
    """From ema = 0 with the parameters held at 1, after n updates ema = 1 - prod_t d_t,
    with d_t = min(decay, (1 + t) / (10 + t))."""
    decay, n = 0.8, 40
    params = {"w": tf.Variable(tf.ones([3, 2]))}
    ema = {"w": tf.Variable(tf.zeros([3, 2]))}
    for t in range(1, n + 1):
        training.update_moving_average(ema, params, decay, tf.constant(float(t)))
    d = [min(decay, (1 + t) / (10 + t)) for t in range(1, n + 1)]
    np.testing.assert_allclose(ema["w"].numpy(), 1.0 - np.prod(d), rtol=1e-5)
    assert d[0] == pytest.approx(2 / 11) and d[-1] == decay  # fast forgetting first, then the set decay


def test_a_finished_run_is_returned_not_retrained(reference_run, mnist, monkeypatch):
    out, metrics = reference_run
    monkeypatch.setattr(training, "make_train_chunk", lambda *a, **k: pytest.fail("retrained a finished run"))
    assert training.train(TrainConfig(**TINY), out, progress=False, dataset=mnist) == metrics


# ----------------------------------------------------------------------------- run directory


def test_run_directory_records_config_metrics_and_reproducible_weights(reference_run, mnist):
    out, metrics = reference_run
    config = TrainConfig(**TINY)
    record = checkpoints.load_json(out / "config.json")
    assert record == {"train": config.to_dict(), "model": config.model_config().to_dict()}
    assert TrainConfig.from_dict(record["train"]) == config
    for name in ("checkpoint.npz", "progress.json", "metrics.json", "weights.npz"):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").iterdir()), "no TensorBoard event file"

    assert METRICS_KEYS <= set(metrics)
    assert metrics == checkpoints.load_json(out / "metrics.json")
    assert metrics["finished"] is True and metrics["seed"] == 3 and metrics["config"] == config.to_dict()
    assert metrics["epochs_completed"] == metrics["total_epochs"] == 4
    assert metrics["global_steps"] == 4 * 20 and metrics["selected_epoch"] == 4 and not metrics["stopped_early"]
    assert metrics["test_images"] == 100 and metrics["train_images"] == 100 and metrics["final_k"] == 20
    assert [e["epoch"] for e in metrics["history"]] == [1, 2, 3, 4]
    assert all(np.isfinite(e["train_bound"]) and np.isfinite(e["test_bound"]) for e in metrics["history"])
    assert checkpoints.load_json(out / "progress.json")["history"] == metrics["history"]
    # active units now and then: at every evaluation, computed like the final count
    last = metrics["history"][-1]["active_units"]
    assert all(len(e["active_units"]) == 1 and 0 <= e["active_units"][0] <= 50 for e in metrics["history"])
    final_weights_units = evaluation.active_units(load_weights(out), config.model_config(), mnist.test[:100], seed=3 + 4)
    assert last == final_weights_units["active"]
    tags = {value.tag for path in (out / "tensorboard").iterdir()
            for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert {"train_bound", "test_bound", "learning_rate", "active_units/layer1"} <= tags
    env = metrics["environment"]
    sessions = metrics["training_sessions"]  # the code that trained, not only the code that evaluated
    assert [(x["from_epoch"], x["from_step"]) for x in sessions] == [(0, 0)]
    assert sessions[0]["environment"]["git_revision"] and "tensorflow" in sessions[0]["environment"]
    assert env["git_revision"] and {"tensorflow", "numpy", "python", "cpu"} <= set(env)
    assert set(metrics["wall_seconds"]) >= {"training", "per_stage", "final_evaluation"}
    assert metrics["wall_seconds"]["training"] > 0
    assert len(metrics["active_units"]) == 1 and 0 <= metrics["active_units"][0] <= 50
    assert len(metrics["active_unit_variances"][0]) == 50

    # the weights reproduce the recorded estimates with the same images, k and seeds
    model = models.ModelConfig.from_dict(record["model"])
    weights = load_weights(out)
    assert {n: w.shape for n, w in weights.items()} == {n: w.shape for n, w in models.init_params(model).items()}
    assert all(w.dtype == np.float32 for w in weights.values())
    test_ll = evaluation.log_likelihood(weights, model, mnist.test[:100], k=20, seed=3 + 2, progress=False)
    assert float(np.mean(test_ll)) == pytest.approx(metrics["test_log_likelihood"], abs=1e-9)
    train_x = data.binarize(mnist.train[:100], TRAIN_EVAL_BINARIZATION_SEED)
    train_ll = evaluation.log_likelihood(weights, model, train_x, k=20, seed=3 + 3, progress=False)
    assert float(np.mean(train_ll)) == pytest.approx(metrics["train_log_likelihood"], abs=1e-9)
    assert metrics["test_log_likelihood_stderr"] == pytest.approx(np.std(test_ll) / 10, rel=1e-9)


def test_numpy_reference_agrees_with_the_tensorflow_evaluator(reference_run, mnist):
    """The float64 NumPy evaluator reads weights.npz + config.json["model"] and agrees with TF.

    With the same noise the log-weights agree to float32 precision. The two
    log-likelihood estimators draw different random numbers, so they are compared
    statistically: the per-image difference has mean zero, and its average over 100 images
    must lie within 4 standard errors of zero (a briefly trained model has heavy-tailed
    weights: even L_2000 of one image can move by a nat between seeds).
    """
    numpy_reference = pytest.importorskip("iwae_lib.numpy_reference",
                                          reason="iwae_lib.numpy_reference is not part of this version")
    tf = pytest.importorskip("tensorflow")
    out, _ = reference_run
    model_dict = checkpoints.load_json(out / "config.json")["model"]
    model = models.ModelConfig.from_dict(model_dict)
    weights_np = numpy_reference.load_weights(out / "weights.npz")
    weights_tf = load_weights(out)

    x = mnist.test[:8]
    seed = tf.constant([5, 7], tf.int64)
    log_w_tf, _ = models.log_weights(weights_tf, model, x, 30, seed)
    # models.log_weights draws layer i's noise with stateless_fold_in(seed, i)
    noise = tf.random.stateless_normal([30, 8, model.latent_sizes[0]], seed=tf.random.experimental.stateless_fold_in(seed, 1))
    log_w_np = numpy_reference.log_weights_from_noise_np(weights_np, model_dict, x, [noise.numpy()])
    assert log_w_np.shape == (30, 8)
    np.testing.assert_allclose(log_w_np, log_w_tf.numpy(), rtol=1e-5, atol=2e-3)

    x = mnist.test[:100]
    by_numpy = numpy_reference.log_likelihood_np(weights_np, model_dict, x, k=100, seed=11, chunk=100)
    by_tf = evaluation.log_likelihood(weights_tf, model, x, k=100, seed=11, progress=False)
    assert by_numpy.shape == by_tf.shape == (100,)
    difference = by_numpy - by_tf
    stderr = np.std(difference) / np.sqrt(len(difference))
    assert 0 < stderr < 0.5, "the comparison is too noisy to mean anything"
    assert abs(np.mean(difference)) < 4 * stderr, (np.mean(difference), stderr)


# ----------------------------------------------------------------------------- learning


@pytest.mark.slow
def test_a_short_run_on_mnist_improves_the_test_bound_by_30_nats(tmp_path, mnist):
    """900 Adam steps of IWAE (k=5) on 6000 MNIST images (~20 s)."""
    config = TrainConfig(train_size=6000, schedule="constant", epochs=3, learning_rate=1e-3, k=5,
                         eval_every=0, final_k=100, final_test_size=500, final_train_size=500, seed=1)
    metrics = training.train(config, tmp_path / "run", progress=False, dataset=mnist)
    model = config.model_config()
    untrained = models.init_params(model, config.seed, mnist.train_mean)
    before = np.mean(evaluation.log_likelihood(untrained, model, mnist.test[:500], k=100, seed=config.seed + 2,
                                               progress=False))
    after = metrics["test_log_likelihood"]
    assert after - before > 30.0, (before, after)
    assert -200.0 < after < -90.0
    bounds = [e["train_bound"] for e in metrics["history"]]
    assert bounds[0] < bounds[1] < bounds[2]


def test_early_stopping_selects_the_best_validation_epoch(tmp_path):
    """A high learning rate on 100 images makes the validation bound go down again; with
    patience 2 training stops, and the kept weights are those of the best validation epoch."""
    ds = data.load_dataset("mnist", validation_size=200, seed=0)
    config = TrainConfig(train_size=100, validation_size=200, eval_size=200, eval_every=1, patience=2, epochs=30,
                         schedule="constant", learning_rate=0.01, steps_per_call=5, final_k=20, final_test_size=100,
                         final_train_size=100)
    metrics = training.train(config, tmp_path / "run", progress=False, dataset=ds)
    history = metrics["history"]
    valid = [e["valid_bound"] for e in history]
    assert metrics["stopped_early"] and metrics["epochs_completed"] == len(history) < 30
    best = int(np.argmax(valid)) + 1
    assert metrics["selected_epoch"] == best
    assert len(history) - best == config.patience, "stops after exactly `patience` evaluations without improvement"
    # the kept weights reproduce the best epoch's validation bound (the same evaluation as in training)
    weights = load_weights(tmp_path / "run")
    again = training.heldout_bound(weights, config.model_config(), ds.valid[:200], config.k, config.seed + 1)
    assert again == pytest.approx(valid[best - 1], abs=1e-9)
    if best < len(history):  # and not the last epoch's weights
        last = load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)[0]
        assert any(not np.array_equal(last[n], weights[n]) for n in weights)
    # the per-image validation estimates behind the record's mean, for paired comparisons
    valid_ll = checkpoints.load_arrays(tmp_path / "run" / run_dir.VALID_LL_FILE)
    assert valid_ll["log_likelihood"].shape == (metrics["valid_images"],) == (200,)
    assert np.mean(valid_ll["log_likelihood"]) == pytest.approx(metrics["valid_log_likelihood"], abs=1e-9)
    assert (int(valid_ll["k"]), int(valid_ll["seed"])) == (config.final_k, config.seed + 1)


# ----------------------------------------------------------------------------- configuration errors


@pytest.mark.parametrize("options, message", [
    ({"k": 0}, "k (samples per image) must be an integer >= 1"),
    ({"dataset": "cifar"}, "unknown dataset 'cifar'"),
    ({"objective": "elbo"}, "unknown objective 'elbo'"),
    ({"estimator": "reinforce"}, "unknown gradient estimator 'reinforce'"),
    ({"objective": "vae", "estimator": "dreg"}, "DReG estimator is defined here for the IWAE bound only"),
    ({"epochs": 7}, "needs >= 8 epochs"),
    ({"schedule": "paper", "epochs": 100}, "3280"),
    ({"patience": 3}, "needs a validation set"),
    ({"miwae_groups": 3}, "miwae_groups must divide k"),
    ({"ciwae_beta": 1.5}, "ciwae_beta must lie in [0, 1]"),
    ({"train_size": 10}, "must hold at least one batch of 20"),
    ({"learning_rate": 0.0}, "learning_rate must be positive"),
    ({"n_stochastic": 3}, "1 or 2 stochastic layers"),
    ({"warmup_epochs": 1.0}, "warmup_epochs (1.0) needs --schedule linear_decay"),
    ({"schedule": "linear_decay", "epochs": 4, "warmup_epochs": 4.0}, "must be below epochs"),
    ({"ema_decay": 1.0}, "ema_decay must lie in [0, 1)"),
    ({"eval_k": 0}, "eval_k must be >= 1"),
    ({"latent_sizes": (100, 50)}, "one list of hidden layers per stochastic layer"),
])
def test_invalid_configurations_are_refused_with_a_clear_message(options, message):
    with pytest.raises(ValueError) as info:
        TrainConfig(**options)
    assert message in str(info.value)


def test_unknown_option_in_a_config_dict():
    with pytest.raises(ValueError, match="unknown training options: bogus"):
        TrainConfig.from_dict({"k": 5, "bogus": 1})


def test_a_run_directory_with_another_config_is_refused(tmp_path):
    prepare_run_dir(tmp_path / "run", TrainConfig(**TINY))
    changed = TrainConfig(**dict(TINY, k=10, learning_rate=3e-4))
    with pytest.raises(ValueError, match=r"differs in: k, learning_rate"):
        prepare_run_dir(tmp_path / "run", changed)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["k"] == 5


def test_an_unwritable_output_directory_is_refused(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="cannot write to the output directory"):
        prepare_run_dir(blocker / "run", TrainConfig(**TINY))


FIXTURE_RUN = Path(__file__).resolve().parent / "fixtures" / "resume_a88b801"


def _train_from_fixture(out, files):
    """Copy ``files`` of the fixture run into ``out``, train it to the end and return its weights
    (name -> array) and per-image test log-likelihoods ([test images])."""
    out.mkdir()
    for name in files:
        (out / name).write_bytes((FIXTURE_RUN / name).read_bytes())
    if "checkpoint.npz" in files:
        assert checkpoint_position(out) == {"epoch": 1, "step_in_epoch": 10, "global_step": 30}
    training.train(TrainConfig(**checkpoints.load_json(out / "config.json")["train"]), out, progress=False)
    return load_weights(out), checkpoints.load_arrays(out / "test_log_likelihoods.npz")["log_likelihood"]


def test_a_checkpoint_of_earlier_code_resumes_bit_for_bit(tmp_path, real_data_dir):
    """A run checkpointed mid-epoch by the code of a88b801 (fixture) resumes with today's code
    to the weights and per-image test estimates its uninterrupted run ended with there.

    Bit for bit where this machine's float32 arithmetic is the fixture machine's: today's code
    trained from scratch here must then end on the fixture's numbers exactly. CPUs with other
    vector instructions (AVX-512 or not) round matrix products differently; there the
    comparison allows float32 rounding (an AVX2-only AMD EPYC ends at most 1e-6 from the
    fixture's weights and 3e-5 nats from its per-image estimates)."""
    fresh_weights, _ = _train_from_fixture(tmp_path / "fresh", ("config.json",))
    weights, per_image = _train_from_fixture(tmp_path / "resumed", ("config.json", "checkpoint.npz", "progress.json"))
    expected = checkpoints.load_arrays(FIXTURE_RUN / "expected_weights.npz")
    expected_per_image = checkpoints.load_arrays(FIXTURE_RUN / "expected_test_log_likelihoods.npz")["log_likelihood"]
    assert sorted(weights) == sorted(expected)
    if all(np.array_equal(fresh_weights[name], expected[name]) for name in expected):  # same arithmetic
        assert all(np.array_equal(weights[name], expected[name]) for name in expected)
        assert np.array_equal(per_image, expected_per_image)
    else:
        for name in expected:
            np.testing.assert_allclose(weights[name], expected[name], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(per_image, expected_per_image, rtol=1e-6)
