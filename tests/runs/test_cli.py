"""The command line: flags generated from TrainConfig, errors a person can act on (one
line, the right exit status, before any data is read), evaluate and show."""

import dataclasses
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from iwae_lib import checkpoints, cli, data, evaluation, models, training
from iwae_lib.run_dir import checkpoint_position, prepare_run_dir
from iwae_lib.config import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = dict(train_size=200, schedule="constant", epochs=2, k=5, steps_per_call=5, eval_every=1, eval_size=50,
            final_k=20, final_test_size=50, final_train_size=50, seed=4)


def run_cli(args, env=None, timeout=300):
    """``python -m iwae_lib ARGS`` in a fresh process: (CompletedProcess, its CPU seconds).

    CPU time rather than wall time, so that a busy machine does not make tests fail.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, "-m", "iwae_lib", *args], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=timeout, env=dict(os.environ, **(env or {})))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def parse_train(argv):
    return cli.build_train_config(cli.make_parser().parse_args(["train", *argv]))


@pytest.fixture
def no_data_loading(monkeypatch):
    """Fail the test if anything reads data or starts training."""
    def forbidden(*args, **kwargs):
        pytest.fail("data were loaded or training started for a command that should fail first")

    for module, name in ((data, "load_dataset"), (data, "load_mnist"), (training, "train")):
        monkeypatch.setattr(module, name, forbidden)


@pytest.fixture(scope="module")
def finished_run(real_data_dir, tmp_path_factory):
    """A finished tiny run: (run dir, metrics, dataset)."""
    ds = data.load_dataset("mnist")
    out = tmp_path_factory.mktemp("cli_run")
    metrics = training.train(TrainConfig(**TINY), out, progress=False, dataset=ds)
    return out, metrics, ds


# ----------------------------------------------------------------------------- flags


def test_every_trainconfig_field_has_a_flag():
    parser = cli.make_parser()
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()
    for field in dataclasses.fields(TrainConfig):
        assert cli.flag_name(field.name) in help_text, field.name


def test_flags_build_the_config_with_lists_none_and_defaults(tmp_path):
    config = parse_train(["--out", str(tmp_path), "--n-stochastic", "2", "--latent-sizes", "100", "50",
                          "--hidden-sizes", "200,200", "100,100", "--k", "50", "--objective", "miwae",
                          "--miwae-groups", "5", "--learning-rate", "3e-4", "--train-size", "none",
                          "--checkpoint-seconds", "12.5"])
    assert config.latent_sizes == (100, 50) and config.hidden_sizes == ((200, 200), (100, 100))
    assert config.model_config() == models.ModelConfig((100, 50), ((200, 200), (100, 100)))
    assert (config.k, config.objective, config.miwae_groups) == (50, "miwae", 5)
    assert config.learning_rate == 3e-4 and config.checkpoint_seconds == 12.5
    assert config.train_size is None and config.patience is None  # 'none', and absent
    defaults = TrainConfig()
    assert (config.batch_size, config.epochs, config.seed) == (defaults.batch_size, defaults.epochs, defaults.seed)


def test_paper_schedule_without_epochs_means_3280_epochs(tmp_path):
    config = parse_train(["--out", str(tmp_path), "--schedule", "paper"])
    assert config.epochs is None and config.total_epochs() == 3280


def test_a_recipe_sets_the_optimisation_and_flags_override_it(tmp_path):
    from iwae_lib import recipes

    fast = parse_train(["--out", str(tmp_path), "--recipe", "fast", "--k", "50"])
    assert fast == recipes.recipe_config("fast", k=50)
    assert (fast.schedule, fast.epochs, fast.k) == ("linear_decay", 328, 50)
    assert recipes.matching_recipe(fast) == "fast"
    assert parse_train(["--out", str(tmp_path), "--recipe", "paper"]).total_epochs() == 3280
    scaled = parse_train(["--out", str(tmp_path), "--recipe", "scaled", "--epochs", "100"])
    assert (scaled.schedule, scaled.epochs) == ("scaled", 100) and recipes.matching_recipe(scaled) is None
    with pytest.raises(ValueError, match="unknown recipe 'quick'"):
        recipes.recipe_options("quick")


def test_config_file_then_flags(tmp_path):
    flat = tmp_path / "options.json"
    flat.write_text(json.dumps({"k": 50, "objective": "vae", "epochs": 24}))
    config = parse_train(["--out", str(tmp_path / "run"), "--config", str(flat), "--objective", "iwae"])
    assert (config.k, config.objective, config.epochs) == (50, "iwae", 24)
    # a run's config.json ({"train": ..., "model": ...}) works too
    record = tmp_path / "config.json"
    record.write_text(json.dumps({"train": TrainConfig(k=7, seed=9).to_dict(), "model": {}}))
    assert parse_train(["--out", str(tmp_path / "run"), "--config", str(record)]) == TrainConfig(k=7, seed=9)


def test_resume_takes_the_stored_options_as_defaults(tmp_path):
    stored = TrainConfig(**TINY)
    prepare_run_dir(tmp_path, stored)
    assert parse_train(["--out", str(tmp_path), "--resume"]) == stored
    assert parse_train(["--out", str(tmp_path), "--resume", "--k", "9"]).k == 9


# ----------------------------------------------------------------------------- errors


BAD_TRAIN_ARGS = [
    (["--k", "0"], "k (samples per image) must be an integer >= 1"),
    (["--k", "abc"], "argument --k: expected an integer"),
    (["--dataset", "cifar"], "unknown dataset 'cifar'"),
    (["--objective", "elbo"], "unknown objective 'elbo'"),
    (["--estimator", "reinforce"], "unknown gradient estimator"),
    (["--objective", "vae", "--estimator", "dreg"], "DReG estimator is defined here for the IWAE bound only"),
    (["--epochs", "5"], "needs >= 8 epochs"),
    (["--schedule", "paper", "--epochs", "100"], "3280"),
    (["--patience", "3"], "needs a validation set"),
    (["--hidden-sizes", "200,x"], "expected integers separated by commas"),
    (["--latent-sizes", "100,50"], "one integer per value"),
    (["--learning-rate", "-1"], "learning_rate must be positive"),
    (["--bogus", "1"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("argv, message", BAD_TRAIN_ARGS)
def test_bad_train_options_give_one_error_line_and_status_2(argv, message, tmp_path, capsys, no_data_loading):
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out.exists(), "a refused command must not create the run directory"


def test_missing_out_and_unwritable_out(tmp_path, capsys, no_data_loading):
    assert cli.main(["train", "--k", "5"]) == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert cli.main(["train", "--out", str(blocker / "run")]) == 2
    assert "cannot write to the output directory" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(blocker)]) == 2
    assert "is not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ('{"k": 5, "bogus": 1}', "unknown training options: bogus"),
    ('{"k": 5,', "is not valid JSON"),
    ('[1, 2]', "must hold a JSON object"),
    ('{"k": "five"}', "must be an integer >= 1, got five"),
])
def test_bad_config_files(content, message, tmp_path, capsys, no_data_loading):
    path = tmp_path / "options.json"
    path.write_text(content)
    assert cli.main(["train", "--out", str(tmp_path / "run"), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err


def test_existing_run_directories_need_resume_and_the_same_config(tmp_path, capsys, no_data_loading):
    flags = [arg for name, value in TINY.items() for arg in (cli.flag_name(name), str(value))]
    run = tmp_path / "run"
    prepare_run_dir(run, TrainConfig(**TINY))
    (run / "checkpoint.npz").write_bytes(b"")  # only its existence matters here
    assert cli.main(["train", "--out", str(run), *flags]) == 2
    assert "already holds this run; add --resume" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(run), *flags, "--k", "10", "--resume"]) == 2
    assert "different configuration (differs in: k)" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "holds no run to resume" in capsys.readouterr().err


@pytest.mark.slow
def test_a_config_error_in_a_fresh_process_is_quick_and_without_traceback(tmp_path):
    result, cpu_seconds = run_cli(["train", "--out", str(tmp_path / "run"), "--objective", "vae",
                                   "--estimator", "dreg"])
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: the DReG estimator") and result.stderr.count("\n") == 1, result.stderr
    # importing TensorFlow takes ~4 CPU seconds; reading MNIST or tracing a model would add more
    assert cpu_seconds < 20, f"used {cpu_seconds:.0f} CPU seconds: the error must come before any data or TF work"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_missing_data_files_exit_1_with_the_data_error(tmp_path):
    empty = tmp_path / "no_data"
    empty.mkdir()
    result, _ = run_cli(["train", "--out", str(tmp_path / "run"), "--no-progress"], env={"IWAE_DATA_DIR": str(empty)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.search(r"^error: data file \S+ is missing from IWAE_DATA_DIR=", result.stderr, re.M), result.stderr


def test_ctrl_c_reports_the_checkpoint_to_resume_from(finished_run, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(finished_run[0], run)
    for name in ("metrics.json", "weights.npz"):
        (run / name).unlink()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    assert cli.main(["train", "--out", str(run), "--resume"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and f"is after 2 completed epochs; continue with: python -m iwae_lib train " \
                                      f"--out {run} --resume" in err


# ----------------------------------------------------------------------------- evaluate and show


@pytest.mark.slow
def test_evaluate_reproduces_the_recorded_test_log_likelihood(finished_run, tmp_path):
    out, metrics, _ = finished_run
    result, _ = run_cli(["evaluate", str(out), "--k", "20", "--size", "50", "--json", str(tmp_path / "ll.json"),
                         "--no-progress"])
    assert result.returncode == 0, result.stderr
    printed = re.search(r"test log-likelihood \(k=20, 50 images, seed 6, tensorflow\): (-?[\d.]+) \+- ([\d.]+)",
                        result.stdout)
    assert printed, result.stdout
    assert float(printed.group(1)) == pytest.approx(metrics["test_log_likelihood"], abs=1e-4)
    assert float(printed.group(2)) == pytest.approx(metrics["test_log_likelihood_stderr"], abs=1e-4)
    record = json.loads((tmp_path / "ll.json").read_text())
    assert record["log_likelihood"] == pytest.approx(metrics["test_log_likelihood"], abs=1e-9)
    assert (record["k"], record["images"], record["seed"], record["split"]) == (20, 50, 6, "test")


def test_evaluate_train_split_and_weights_path(finished_run, capsys):
    out, metrics, _ = finished_run
    assert cli.main(["evaluate", str(out / "weights.npz"), "--k", "20", "--size", "50", "--split", "train",
                     "--no-progress"]) == 0
    printed = re.search(r"train log-likelihood \(k=20, 50 images, seed 7, tensorflow\): (-?[\d.]+)",
                        capsys.readouterr().out)
    assert printed and float(printed.group(1)) == pytest.approx(metrics["train_log_likelihood"], abs=1e-4)


def test_evaluate_with_the_numpy_reference(finished_run, tmp_path, capsys):
    pytest.importorskip("iwae_lib.numpy_reference", reason="iwae_lib.numpy_reference is not part of this version")
    out, _, ds = finished_run
    assert cli.main(["evaluate", str(out), "--k", "1000", "--size", "5", "--seed", "1", "--numpy",
                     "--json", str(tmp_path / "np.json")]) == 0
    by_numpy = json.loads((tmp_path / "np.json").read_text())
    assert by_numpy["evaluator"] == "numpy" and by_numpy["images"] == 5
    record = checkpoints.load_json(out / "config.json")
    by_tf = evaluation.log_likelihood(checkpoints.load_arrays(out / "weights.npz"),
                                      models.ModelConfig.from_dict(record["model"]), ds.test[:5], k=1000, seed=1,
                                      progress=False)
    assert by_numpy["log_likelihood"] == pytest.approx(float(np.mean(by_tf)), abs=0.1)


def test_evaluate_errors(finished_run, tmp_path, capsys):
    out = finished_run[0]
    assert cli.main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "no config.json" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(out / "config.json", unfinished)
    assert cli.main(["evaluate", str(unfinished)]) == 2
    assert f"continue it with: python -m iwae_lib train --out {unfinished} --resume" in capsys.readouterr().err
    assert cli.main(["evaluate", str(out), "--split", "valid", "--k", "5", "--no-progress"]) == 2
    assert "no validation set" in capsys.readouterr().err
    assert cli.main(["evaluate", str(out), "--k", "0"]) == 2
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    shutil.copy(out / "config.json", wrong)
    np.savez(wrong / "weights.npz", **{"enc1/mean/w": np.zeros((3, 3), np.float32)})
    assert cli.main(["evaluate", str(wrong)]) == 2
    assert "does not match the architecture" in capsys.readouterr().err


def test_evaluate_names_the_folder_it_was_given(tmp_path, capsys, monkeypatch, no_data_loading):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    advice = "point evaluate at a run directory or its weights.npz"
    for given in ("results/nope", "results/nope/weights.npz"):
        assert cli.main(["evaluate", given]) == 2
        assert capsys.readouterr().err == f"error: no config.json in results/nope (no such directory): {advice}\n"
    assert cli.main(["evaluate", "results"]) == 2  # a folder that exists but holds no run
    assert capsys.readouterr().err == f"error: no config.json in results: {advice}\n"


def test_evaluate_names_the_damaged_weights_and_what_to_do(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run[0], run)
    weights = run / "weights.npz"
    intact = weights.read_bytes()
    flipped = intact[:1000] + bytes([intact[1000] ^ 0xFF]) + intact[1001:]
    for damaged, reason in ((intact[: len(intact) // 2], "BadZipFile: File is not a zip file"),  # a copy cut short
                            (flipped, "BadZipFile: Bad CRC-32 for file ")):
        weights.write_bytes(damaged)
        assert cli.main(["evaluate", str(run), "--k", "5", "--no-progress"]) == 1
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(f"error: {weights} is damaged and was not used ({reason}"), line
        assert line.endswith(f"Put back an intact copy (of a run recorded in git: git checkout -- {weights}), "
                             "or delete it and metrics.json, then write both again from the run's checkpoint: "
                             f"python -m iwae_lib train --out {run} --resume"), line
        assert weights.read_bytes() == damaged  # left as it was
    (run / "checkpoint.npz").unlink()  # a recorded run keeps no checkpoint: nothing to write the weights from
    assert cli.main(["evaluate", str(weights), "--k", "5", "--no-progress"]) == 1
    assert capsys.readouterr().err.endswith(f"git checkout -- {weights}), or train the run again\n")


def test_resume_names_the_damaged_checkpoint_and_what_to_do(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run[0], run)
    for name in ("metrics.json", "weights.npz"):
        (run / name).unlink()
    checkpoint = run / "checkpoint.npz"
    damaged = checkpoint.read_bytes()[:-200]
    checkpoint.write_bytes(damaged)
    assert cli.main(["train", "--out", str(run), "--resume", "--no-progress"]) == 1
    assert capsys.readouterr().err == (
        f"error: checkpoint {checkpoint} is damaged and was not used (BadZipFile: File is not a zip file), so the "
        "run cannot continue from it: put back an intact copy, or delete it to train the run again from the start\n")
    assert checkpoint.read_bytes() == damaged and not (run / "weights.npz").exists()
    assert checkpoint_position(run) is None  # show and runs read past it instead of stopping
    assert cli.main(["show", str(run)]) == 0
    assert "status: not finished, 2 of 2 epochs checkpointed" in capsys.readouterr().out


def test_show_summarises_finished_and_unfinished_runs(finished_run, tmp_path, capsys):
    out, metrics, _ = finished_run
    assert cli.main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "status: finished, 2 of 2 epochs" in text
    assert "model: 784-200-200-[50]" in text and "k=5" in text and "seed=4" in text
    header = next(line for line in text.splitlines() if "train bound" in line)
    assert header.split() == ["epoch", "stage", "lr", "train", "bound", "test", "bound"]
    rows = text.splitlines()[text.splitlines().index(header) + 1:][:2]
    for row, entry in zip(rows, metrics["history"]):
        assert row.split()[0] == str(entry["epoch"]) and row.split()[3] == f"{entry['train_bound']:.2f}"
    assert f"test log-likelihood:  {metrics['test_log_likelihood']:.3f}" in text
    assert metrics["environment"]["git_revision"] in text

    unfinished = tmp_path / "unfinished"
    shutil.copytree(out, unfinished)
    for name in ("metrics.json", "weights.npz"):
        (unfinished / name).unlink()
    assert cli.main(["show", str(unfinished)]) == 0
    assert "status: not finished, 2 of 2 epochs checkpointed" in capsys.readouterr().out
    assert cli.main(["show", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_history_table_keeps_evaluated_epochs_of_a_long_run():
    history = [{"epoch": e, "stage": 0, "learning_rate": 1e-3, "train_bound": -100.0 - e} for e in range(1, 101)]
    for entry in history[9::10]:
        entry["test_bound"] = -90.0
    lines = cli.history_table(history).splitlines()
    assert [int(line.split()[0]) for line in lines[1:]] == list(range(10, 101, 10))
