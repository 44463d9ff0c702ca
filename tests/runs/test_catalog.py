"""The book's list of runs: every chapter's full-profile configuration declared once, the
status of each in results/, time estimates from epochs measured here, and the command that
records each (``python -m iwae_lib runs``)."""

import dataclasses
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from iwae_lib import checkpoints, cli, recipes
from iwae_lib.cli import runs as runs_cli
from iwae_lib.chapters import catalog
from iwae_lib.bookkeeping import pace, status
from iwae_lib.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def parse_command(command: str) -> TrainConfig:
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "iwae_lib", "train"]
    args = [w for w in words[4:] if w != "--resume"]
    return cli.build_train_config(cli.make_parser().parse_args(["train", *args]))


def write_json(path: Path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def fake_unfinished(folder: Path, config: TrainConfig, epochs: int, seconds_per_epoch: float):
    """A run folder as training leaves it after ``epochs`` epochs (config, progress, checkpoint counters)."""
    write_json(folder / "config.json", {"train": config.to_dict(), "model": config.model_config().to_dict()})
    history = [{"epoch": e + 1, "train_seconds": seconds_per_epoch * (e + 1)} for e in range(epochs)]
    write_json(folder / "progress.json", {"epochs_completed": epochs, "total_epochs": config.total_epochs(),
                                          "history": history})
    counters = {"epoch": epochs, "step_in_epoch": 0, "global_step": 0}
    np.savez(folder / "checkpoint.npz", counters_json=np.array(json.dumps(counters)))


def fake_recorded(folder: Path, config: TrainConfig):
    write_json(folder / "metrics.json", {"config": config.to_dict(), "history": [], "test_log_likelihood": -90.0})


# ----------------------------------------------------------------------------- the catalog


def test_the_catalog_holds_every_chapters_runs_once():
    runs = catalog.book_runs()
    table1 = catalog.table1_recipe_runs()  # Table 1 in the chosen recipe: the runs chapters 1 and 6 show
    assert len(table1) == 12 and all(runs[name].config == config for name, config in table1.items())
    assert list(table1)[0] == catalog.table1_name(1, "vae", 1) == "mnist_1l_vae_k1_fast"
    fast = recipes.recipe_options(catalog.TABLE1_RECIPE)
    assert all(c.schedule == fast["schedule"] and c.epochs == fast["epochs"] == 328 and c.ema_decay == fast["ema_decay"]
               for c in table1.values())
    assert runs["mnist_1l_iwae_k5_fast"].chapters == (1, 10)  # one run shared by two chapters
    assert runs["mnist_1l_iwae_k5"].chapters == (3, 5, 10)  # the scaled-paper run: chapters 3, 5 and a baseline
    assert runs["mnist_2l_vae_k50_fast"].config.n_stochastic == 2 and runs["mnist_2l_vae_k50_fast"].config.k == 50
    assert "mnist_2l_vae_k50" not in runs and "mnist_1l_vae_k1" not in runs  # no scaled-paper set of Table 1
    scaled = {name for name, run in runs.items() if run.config.schedule == "scaled" and run.config.dataset == "mnist"
              and run.config.estimator == "standard" and not run.config.validation_size and run.config.epochs == 288}
    assert scaled == {"mnist_1l_iwae_k1", "mnist_1l_iwae_k5", "mnist_1l_iwae_k50", "mnist_1l_vae_k5"}
    assert runs["mnist_1l_iwae_k5_snapshots"].kind == "snapshots"
    assert runs["mnist_1l_iwae_k5_snapshots"].snapshot_epochs == (1, 2, 4, 8, 16, 32, 64)
    # every chapter of the paper (chapter 2 was merged into chapter 2)
    assert {c for run in runs.values() for c in run.chapters} == set(range(1, 9)) | {10}
    for run in runs.values():  # the full profile evaluates on the whole test set (snapshots: 1000 images)
        assert run.config.train_size is None
        assert run.config.final_test_size is None or run.kind == "snapshots" or run.config.epochs == 2


def test_recorded_runs_match_the_catalog():
    """The catalog's Table 1 configuration is exactly what the recorded run used."""
    recorded = json.loads((REPO / "results" / "mnist_1l_iwae_k5" / "config.json").read_text())["train"]
    state, *_ = status.folder_state(REPO / "results" / "mnist_1l_iwae_k5", catalog.config("mnist_1l_iwae_k5", smoke=False))
    assert state == "recorded"
    assert TrainConfig.from_dict(recorded).epochs == catalog.FULL_EPOCHS == 288


def test_a_second_table1_set_with_another_recipe():
    fast = catalog.table1_runs({"learning_rate": 3e-3, "epochs": 100}, "_fast")
    assert list(fast) == [name + "_fast" for name in catalog.table1_runs()]
    assert all(c.learning_rate == 3e-3 and c.epochs == 100 and c.final_k == 5000 for c in fast.values())


def test_config_applies_smoke_overrides_and_names_unknown_runs():
    small = catalog.config("mnist_1l_vae_k50_fast", smoke=False, epochs=8, train_size=100)
    assert (small.objective, small.k, small.epochs, small.train_size) == ("vae", 50, 8, 100)
    with pytest.raises(KeyError, match="known runs: mnist_1l_vae_k1_fast"):
        catalog.config("mnist_1l_vae_k7")


def test_every_command_rebuilds_its_config_exactly():
    for run in catalog.book_runs().values():
        if run.kind == "train":
            command = status.train_command(run.name, run.config)
            assert f"--out results/{run.name} " in command
            assert parse_command(command) == run.config, run.name
    weird = TrainConfig(latent_sizes=(100, 50), hidden_sizes=((200, 200), (100, 100)), n_stochastic=2, k=50,
                        train_size=None, patience=None, learning_rate=3e-4, epochs=None, schedule="paper")
    assert parse_command(status.train_command("x", weird)) == weird


# ----------------------------------------------------------------------------- time estimates

HERE = {"cpu": "Test CPU", "cpu_count": 2}


def fake_finished(folder: Path, config: TrainConfig, durations, sessions=None):
    """A metrics.json of a run whose epochs took ``durations`` seconds (``sessions``: (from
    epoch, environment) of each training session; default: one session on :data:`HERE`)."""
    cumulative = np.cumsum(durations)
    history = [{"epoch": e + 1, "train_seconds": float(t)} for e, t in enumerate(cumulative)]
    sessions = sessions or [(0, HERE)]
    write_json(folder / "metrics.json", {"config": config.to_dict(), "history": history, "environment": sessions[-1][1],
                                         "training_sessions": [{"from_epoch": e, "environment": env}
                                                               for e, env in sessions]})


def test_the_estimate_is_seconds_per_epoch_of_the_same_step_shape_measured_here(tmp_path):
    k5 = TrainConfig(k=5, epochs=10, eval_every=0)  # 3000 steps per epoch of 60000 images
    fake_finished(tmp_path / "a", k5, [30.0] * 4)
    fake_finished(tmp_path / "b", dataclasses.replace(k5, schedule="constant", epochs=4), [60.0] * 4)  # slowed twin
    fake_finished(tmp_path / "k50", dataclasses.replace(k5, k=50), [200.0] * 4)
    paces = pace.measured(tmp_path, HERE)
    assert paces.epoch_seconds(k5) == pytest.approx(30.0)  # the shape's fastest run
    assert paces.epoch_seconds(dataclasses.replace(k5, k=50)) == pytest.approx(200.0)
    assert pace.run_seconds(k5, paces) == pytest.approx(10 * 30.0)
    assert pace.run_seconds(k5, paces, epochs_done=4) == pytest.approx(6 * 30.0)
    assert pace.run_seconds(k5, paces, 4, own_epoch_seconds=7.0) == pytest.approx(6 * 7.0)  # a run's own pace first
    # an epoch of 50000 images (10000 held out for validation) takes 5/6 of the time
    assert paces.epoch_seconds(dataclasses.replace(k5, validation_size=10000)) == pytest.approx(25.0)
    # another k, batch size, estimator or likelihood is another shape: no estimate
    for other in (dataclasses.replace(k5, k=1), dataclasses.replace(k5, batch_size=100),
                  dataclasses.replace(k5, estimator="dreg"), catalog.eight_bit_config()):
        assert paces.epoch_seconds(other) is None and pace.run_seconds(other, paces) is None
    assert pace.format_hours(None) == "?" and pace.format_hours(5400.0) == "1.5 h" and pace.format_hours(600) == "10 min"
    assert "measured here (Test CPU, 2 cores)" in paces.basis and "same step shape" in paces.basis


def test_only_epochs_trained_on_this_machine_count(tmp_path):
    k5 = TrainConfig(k=5, epochs=10, eval_every=0)
    elsewhere = {"cpu": "Other CPU", "cpu_count": 2}
    fake_finished(tmp_path / "moved", k5, [10.0] * 3 + [40.0] * 3, sessions=[(0, elsewhere), (3, HERE)])
    assert pace.measured(tmp_path, HERE).epoch_seconds(k5) == pytest.approx(40.0)
    assert pace.measured(tmp_path, elsewhere).epoch_seconds(k5) == pytest.approx(10.0)
    assert pace.measured(tmp_path, {"cpu": "Test CPU", "cpu_count": 16}).step_seconds == {}


def test_the_pace_of_a_run_ignores_its_slowed_epochs(tmp_path):
    # eight epochs at 50 s, two slowed to 300 s by other work on the machine
    durations = [50.0, 51.0, 300.0, 49.0, 50.0, 310.0, 50.0, 52.0, 50.0, 51.0]
    history = [{"epoch": e + 1, "train_seconds": float(np.sum(durations[: e + 1]))} for e in range(len(durations))]
    assert pace.epoch_pace(history) == pytest.approx(50.0)  # lower quartile of the durations
    assert np.mean(durations) > 100  # what the average over the run would have said
    assert pace.epoch_pace([]) is None and pace.epoch_pace([{"epoch": 1}]) is None
    k5 = TrainConfig(k=5, epochs=20, eval_every=0, final_k=10)
    folder = tmp_path / "half"
    fake_unfinished(folder, k5, epochs=10, seconds_per_epoch=1.0)
    progress = json.loads((folder / "progress.json").read_text())
    progress["history"] = history
    write_json(folder / "progress.json", progress)
    assert status.folder_state(folder, k5) == ("unfinished", 10, [], pytest.approx(50.0))


# ----------------------------------------------------------------------------- status and the command line


def small_catalog():
    base = TrainConfig(k=5, schedule="constant", epochs=4, eval_every=0, final_k=10)
    chain = catalog.BookRun("chain", dataclasses.replace(base, epochs=2), (5,), kind="snapshots",
                            snapshot_epochs=(1, 2))
    return {"done": catalog.BookRun("done", base, (1,)), "half": catalog.BookRun("half", base, (1,)),
            "none": catalog.BookRun("none", dataclasses.replace(base, k=50), (2,)),
            "other": catalog.BookRun("other", base, (3,)), "chain": chain}


def test_statuses_commands_and_the_builds_message(tmp_path):
    runs = small_catalog()
    fake_recorded(tmp_path / "done", runs["done"].config)
    fake_unfinished(tmp_path / "half", runs["half"].config, epochs=1, seconds_per_epoch=60.0)
    fake_recorded(tmp_path / "other", dataclasses.replace(runs["other"].config, k=7))
    fake_recorded(tmp_path / "chain" / "epoch_0001", dataclasses.replace(runs["chain"].config, epochs=1))
    fake_finished(tmp_path / "done", runs["done"].config, [20.0] * 4)  # 20 s per epoch of this shape, here
    paces = pace.measured(tmp_path, HERE)
    rows = status.statuses(runs, tmp_path, paces)
    by_name = {s.run.name: s for s in rows}
    assert [s.state for s in rows] == ["recorded", "unfinished", "missing", "different", "unfinished"]
    assert by_name["done"].command == "" and by_name["done"].seconds == 0
    assert by_name["half"].epochs_done == 1 and by_name["half"].command.endswith(" --resume")
    assert by_name["half"].seconds == 3 * 60.0  # three epochs left at its own 60 s per epoch
    assert by_name["chain"].seconds == 1 * 20.0  # one epoch left at the pace of "done", its shape
    assert by_name["none"].seconds is None  # k=50: no run of that shape recorded here
    assert not by_name["none"].command.endswith("--resume") and "--k 50" in by_name["none"].command
    assert "differs in: k" in by_name["other"].detail
    assert by_name["chain"].epochs_done == 1 and by_name["chain"].command == "python -m iwae_lib record chain"

    message = status.check_message(rows, paces)
    for name in ("half", "none", "other", "chain"):
        assert f"  {name} (" in message
    assert by_name["half"].command in message and "IWAE_SMOKE=1 bash scripts/build_book.sh" in message
    assert "In all, training left on this machine, one run after another: 3 min + 1 run without an estimate." in message
    assert "  none (missing, about ?)" in message and paces.basis in message
    assert status.check_message([by_name["done"]], paces) is None


def test_the_runs_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IWAE_RESULTS_DIR", str(tmp_path))
    assert cli.main(["runs", "--missing-commands"]) == 0
    commands = capsys.readouterr().out.splitlines()
    assert len(commands) == len(catalog.book_runs())  # nothing recorded in an empty results folder
    assert commands[0] == (f"python -m iwae_lib train --out {tmp_path}/mnist_1l_vae_k1_fast --objective vae --k 1 "
                           "--schedule linear_decay --warmup-epochs 1.0 --ema-decay 0.999")
    assert cli.main(["runs", "--check"]) == 1
    assert "IWAE_SMOKE=1 bash scripts/build_book.sh" in capsys.readouterr().err
    assert cli.main(["runs"]) == 0
    table = capsys.readouterr().out
    assert f"0 of {len(commands)} runs recorded" in table and "estimates: time left = epochs left x " in table
    assert cli.main(["record", "no_such_run"]) == 2


def test_a_run_being_trained_is_shown_and_not_handed_out_again(tmp_path, monkeypatch, capsys):
    """While a process holds a run's lock (here this test, by the trainer's own lock), ``runs``
    says so with its pid and ``--missing-commands`` leaves the run out; once released, both
    are as before. A snapshot chain counts as trained while one of its segments is held."""
    monkeypatch.setenv("IWAE_RESULTS_DIR", str(tmp_path))
    first = next(iter(catalog.book_runs()))
    chain = next(run for run in catalog.book_runs().values() if run.kind == "snapshots")
    fake_unfinished(tmp_path / first, catalog.config(first, smoke=False), epochs=2, seconds_per_epoch=60.0)
    assert cli.main(["runs", "--missing-commands"]) == 0
    everything = capsys.readouterr().out.splitlines()
    assert f"--out {tmp_path}/{first} " in everything[0] and everything[0].endswith("--resume")
    from iwae_lib.chapters.snapshots import segment_name

    segment = tmp_path / chain.name / segment_name(chain.snapshot_epochs[0])
    segment.mkdir(parents=True)
    with checkpoints.exclusive_run(tmp_path / first), checkpoints.exclusive_run(segment):
        assert checkpoints.training_process(tmp_path / first) == str(os.getpid())
        assert cli.main(["runs", "--missing-commands"]) == 0
        out, err = capsys.readouterr()
        assert out.splitlines() == [c for c in everything if f"/{first} " not in c and f"record {chain.name}" not in c]
        assert f"{first}: left out, process {os.getpid()} is training it now" in err
        assert cli.main(["runs"]) == 0
        table = capsys.readouterr().out
        assert f"unfinished, 2 of 328 epochs, training now (pid {os.getpid()})" in table
        assert sum("training now" in line for line in table.splitlines()) == 2
    assert checkpoints.training_process(tmp_path / first) is None
    assert checkpoints.training_process(tmp_path / "never_trained") is None
    assert cli.main(["runs", "--missing-commands"]) == 0
    assert capsys.readouterr().out.splitlines() == everything


@pytest.mark.slow
def test_the_runs_command_into_a_closed_pipe_is_quiet(tmp_path):
    """``runs --missing-commands | head -0``: the reader is gone before the first line."""
    env = dict(os.environ, IWAE_RESULTS_DIR=str(tmp_path))
    child = subprocess.Popen([sys.executable, "-m", "iwae_lib", "runs", "--missing-commands"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_record_trains_a_snapshot_chain_into_the_results_folder(real_data_dir, tmp_path, monkeypatch, capsys):
    tiny = TrainConfig(train_size=100, schedule="constant", epochs=2, k=2, eval_every=0, final_k=10,
                       final_test_size=20, final_train_size=20, steps_per_call=5)
    runs = {"chain": catalog.BookRun("chain", tiny, (5,), kind="snapshots", snapshot_epochs=(1, 2))}
    monkeypatch.setattr(catalog, "book_runs", lambda: runs)
    monkeypatch.setenv("IWAE_RESULTS_DIR", str(tmp_path))
    assert cli.main(["runs", "--missing-commands"]) == 0
    assert capsys.readouterr().out.splitlines() == ["python -m iwae_lib record chain"]
    assert cli.main(["record", "chain", "--no-progress"]) == 0
    for epochs in (1, 2):
        metrics = json.loads((tmp_path / "chain" / f"epoch_000{epochs}" / "metrics.json").read_text())
        assert metrics["epochs_completed"] == epochs
    capsys.readouterr()
    assert cli.main(["runs", "--check"]) == 0
    assert "all 1 runs of the book are recorded" in capsys.readouterr().out


def test_a_notebook_says_how_long_training_a_missing_run_takes(tmp_path, monkeypatch, capsys):
    """The notice of ``chapters.train_or_load`` and ``python -m iwae_lib runs`` estimate alike:
    a run of the same step shape recorded here at 12 s per epoch gives 328 x 12 s."""
    from iwae_lib.bookkeeping.status import training_notice

    monkeypatch.setenv("IWAE_RESULTS_DIR", str(tmp_path / "results"))
    name = "mnist_1l_vae_k50_fast"
    config = catalog.config(name, smoke=False)
    results = tmp_path / "results"
    text = training_notice(name, config, tmp_path / "runs" / name, results)
    assert "about ? on this machine (time left = epochs left x seconds per epoch measured here" in text
    assert text.endswith(status.train_command(name, config))
    fake_finished(results / "twin", dataclasses.replace(config, seed=1), [12.0] * 3, sessions=[(0, pace.this_machine())])
    text = training_notice(name, config, tmp_path / "runs" / name, results)
    assert f"about {pace.format_hours(328 * 12.0)} on this machine" in text and pace.format_hours(328 * 12.0) == "1.1 h"
    assert cli.main(["runs"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(name + " "))
    assert " 1.1 h " in row
    fake_unfinished(results / name, config, epochs=100, seconds_per_epoch=10.0)
    resumed = training_notice(name, config, results / name, results)
    assert "from epoch 100" in resumed and resumed.endswith("--resume")
    assert f"about {pace.format_hours(228 * 10.0)} on this machine" in resumed  # its own pace


def test_smoke_profile_shrinks_every_run_in_one_place(monkeypatch):
    """In the smoke profile catalog.config gives each run's smoke version: 8 epochs on 100
    images, small evaluations; the full profile gives the declared configuration."""
    monkeypatch.setenv("IWAE_SMOKE", "1")
    for name, run in catalog.book_runs().items():
        small = catalog.config(name)
        assert (small.train_size, small.final_k, small.final_test_size) == (100, 100, 100), name
        assert small.total_epochs() <= 8 and small.objective == run.config.objective, name
        if run.config.patience is not None:
            assert small.patience == 2 and small.eval_every == 1
        if run.config.n_stochastic == 2:
            assert small.latent_sizes == (20, 10)
    monkeypatch.setenv("IWAE_SMOKE", "0")
    assert catalog.config("mnist_1l_iwae_k50_fast") == catalog.book_runs()["mnist_1l_iwae_k50_fast"].config
    assert catalog.config("mnist_1l_iwae_k50_fast", smoke=True).epochs == 8


def test_run_labels_speak_the_readers_words():
    from iwae_lib import chapters
    from iwae_lib.config import TrainConfig

    assert chapters.run_label(TrainConfig(objective="iwae", k=50)) == "IWAE, k=50"
    assert chapters.run_label(TrainConfig(objective="iwae", k=5, estimator="dreg")) == "IWAE, k=5, DReG"
    assert chapters.run_label(TrainConfig(objective="miwae", k=64, miwae_groups=8)) == "MIWAE, k=64, 8 groups"
    assert chapters.run_label(TrainConfig(objective="ciwae", k=64, ciwae_beta=0.5)) == "CIWAE, k=64, beta=0.5"


def test_runs_note_names_runs_recipe_and_epochs(monkeypatch):
    from iwae_lib import chapters

    monkeypatch.setenv("IWAE_SMOKE", "0")
    names = ["mnist_1l_iwae_k5_fast", "mnist_1l_iwae_k5"]
    note = chapters.runs_note({name: chapters.load_run(name) for name in names})
    assert "mnist_1l_iwae_k5_fast (fast recipe, 328 epochs)" in note
    assert "mnist_1l_iwae_k5 (paper's stages scaled, 288 epochs)" in note.replace("\n", " ")
    assert all(len(line) <= chapters.PAGE_COLUMNS for line in note.splitlines())


def test_long_runs_use_the_papers_recipe_and_the_study_changes_one_thing_at_a_time():
    from iwae_lib.config import config_differences

    paper = catalog.paper_recipe_runs()
    assert sorted(paper) == ["mnist_1l_iwae_k50_paper", "mnist_1l_iwae_k5_paper", "mnist_1l_vae_k5_paper"]
    for config in paper.values():
        assert config.total_epochs() == 3280 and config.schedule == "paper" and config.batch_size == 20
        assert (config.beta1, config.beta2, config.epsilon, config.ema_decay) == (0.9, 0.999, 1e-4, 0.0)
    study = catalog.moonshot_study_runs()
    base = study["study_k50_fast"]
    assert base.k == 50 and base.total_epochs() == 328 and base.validation_size == 10000
    assert config_differences(base.to_dict(), study["study_k50_fast_dreg"].to_dict()) == ["estimator"]
    assert config_differences(base.to_dict(), study["study_k50_fast_refadam"].to_dict()) == [
        "adam_v_init", "beta1", "epsilon"]
    # yburda/iwae's Adam on a gradient summed over 20 images: v from 1, epsilon 1e-4; the same
    # steps on the mean gradient (20 times smaller, its square 400 times)
    refadam = study["study_k50_fast_refadam"]
    assert refadam.batch_size == 20 and refadam.beta1 == 0.99
    assert np.isclose(refadam.adam_v_init, 1.0 / 20**2) and np.isclose(refadam.epsilon, 1e-4 / 20)
    assert not set(paper) & set(catalog.book_runs()) and not set(study) & set(catalog.book_runs())
    assert {c.k for c in catalog.appendix_d_runs().values()} == {1, 50}


@pytest.mark.parametrize("choice", list(catalog.MOONSHOT_STUDY))
def test_the_chosen_recipe_changes_in_table1_only_what_the_study_changed(choice):
    """chosen_table1_runs: the six one-layer Table 1 runs, each differing from its fast run in
    the study candidate's options only (STL for the VAE where the candidate takes DReG), named
    by what changed; nothing to train when the fast recipe itself is chosen."""
    from iwae_lib.config import config_differences

    runs, options = catalog.chosen_table1_runs(choice), catalog.MOONSHOT_STUDY[choice][1]
    if not options:
        assert runs == {}
        return
    fast = catalog.table1_recipe_runs()
    assert len(runs) == 6 and not set(runs) & set(catalog.book_runs())
    for name, config in runs.items():
        twin = fast[catalog.table1_name(1, config.objective, config.k)]
        assert config_differences(twin.to_dict(), config.to_dict()) == sorted(options)
        estimator = options.get("estimator", "standard")
        assert config.estimator == ("stl" if estimator == "dreg" and config.objective == "vae" else estimator)
        words = ["fast"] + ([config.estimator] if "estimator" in options else []) + (
            ["refadam"] if "beta1" in options else [])
        assert name == "_".join([catalog.run_name("mnist", 1, config.objective, config.k), *words])
    # the IWAE k=50 run is named like its study run
    assert catalog.MOONSHOT_STUDY[choice][0].replace("study_k50", "mnist_1l_iwae_k50") in runs
    labels = {objective: catalog.chosen_recipe(objective, choice)[0] for objective in ("vae", "iwae")}
    assert labels["iwae"] == choice and labels["vae"] == choice.replace("DReG", "STL")


def test_the_lanes_take_the_chosen_k50_run_after_the_study(monkeypatch):
    """With a choice made, long_runs lists its IWAE k=50 (chapters 1 and 10) right after the
    study, before the paper's VAE; then Appendix D, then its other five runs (chapter 1)."""
    monkeypatch.setattr(catalog, "MOONSHOT_CHOICE", "fast, DReG")
    names = list(catalog.long_runs())
    chosen = list(catalog.chosen_table1_runs())
    k50 = "mnist_1l_iwae_k50_fast_dreg"
    assert k50 in chosen and catalog.long_runs()[k50].chapters == (1, 10)
    assert names.index(k50) == names.index("study_k50_fast_dreg_refadam") + 1
    assert names.index(k50) + 1 == names.index("mnist_1l_vae_k5_paper")
    rest = [name for name in chosen if name != k50]
    assert names[names.index("mnist_1l_vae_k5_paper") + 1:][:4] == list(catalog.appendix_d_runs())
    assert names[-5:] == rest
    assert all(catalog.long_runs()[name].chapters == (1,) for name in rest)
    assert len(names) == sum(map(len, (catalog.paper_recipe_runs(), catalog.moonshot_study_runs(), chosen,
                                       catalog.appendix_d_runs())))


def test_the_study_is_chosen_on_validation_once_all_four_are_recorded(tmp_path):
    """moonshot_best: None until every study run has a metrics.json, then the label with the
    highest validation log-likelihood, whatever the test set says."""
    scores = {"fast": (-86.7, -86.0), "fast, DReG": (-86.1, -85.5), "fast, reference Adam": (-86.5, -85.2),
              "fast, DReG, reference Adam": (-86.2, -85.3)}
    for count, (label, (valid, test)) in enumerate(scores.items()):
        assert catalog.moonshot_best(tmp_path) is None, count
        folder = tmp_path / catalog.MOONSHOT_STUDY[label][0]
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"valid_log_likelihood": valid, "test_log_likelihood": test}))
    assert catalog.moonshot_best(tmp_path) == "fast, DReG"


@pytest.mark.parametrize("choice", [None, "fast, DReG, reference Adam"])
def test_the_runs_command_lists_the_long_runs_and_their_commands(tmp_path, monkeypatch, capsys, choice):
    """``runs --long``: the paper's recipe, the k=50 study (and the runs of its choice, once
    made) and Appendix D across k, each with a command that rebuilds its configuration; an
    unfinished one is handed out with --resume."""
    monkeypatch.setenv("IWAE_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(catalog, "MOONSHOT_CHOICE", choice)
    long = catalog.long_runs()
    expected = {**catalog.paper_recipe_runs(), **catalog.moonshot_study_runs(), **catalog.chosen_table1_runs(),
                **catalog.appendix_d_runs()}
    assert {name: run.config for name, run in long.items()} == expected
    assert not set(long) & set(catalog.book_runs())
    fake_unfinished(tmp_path / "mnist_1l_iwae_k5_paper", long["mnist_1l_iwae_k5_paper"].config, epochs=3,
                    seconds_per_epoch=5.0)
    assert cli.main(["runs", "--long", "--missing-commands"]) == 0
    commands = capsys.readouterr().out.splitlines()
    assert len(commands) == len(long)
    for name, command in zip(long, commands):
        assert f"--out {tmp_path}/{name} " in command
        assert parse_command(command.replace(" --resume", "")) == long[name].config, name
    assert [c.endswith(" --resume") for c in commands] == [name == "mnist_1l_iwae_k5_paper" for name in long]
    assert cli.main(["runs", "--long"]) == 0
    table = capsys.readouterr().out
    assert f"0 of {len(long)} runs recorded" in table and "unfinished, 3 of 3280 epochs" in table
    assert table.rstrip().splitlines()[-1] == runs_cli.choice_line(tmp_path)


def test_the_runs_command_says_where_the_studys_choice_stands(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "MOONSHOT_CHOICE", None)
    assert runs_cli.choice_line(tmp_path).startswith("the k=50 study's choice: not made yet")
    monkeypatch.setattr(catalog, "moonshot_best", lambda results: "fast, DReG")
    assert runs_cli.choice_line(tmp_path).endswith("set catalog.MOONSHOT_CHOICE = 'fast, DReG' to list the Table 1 "
                                                   "runs of that recipe")
    monkeypatch.setattr(catalog, "MOONSHOT_CHOICE", "fast, DReG")
    assert runs_cli.choice_line(tmp_path) == ("the k=50 study's choice: 'fast, DReG'; 6 Table 1 runs with it are "
                                              "listed above")
    monkeypatch.setattr(catalog, "MOONSHOT_CHOICE", "fast")
    assert runs_cli.choice_line(tmp_path).endswith("the fast recipe: nothing to retrain")


def test_a_long_run_is_shown_once_it_is_recorded(tmp_path):
    """catalog.shown_runs: the book's runs, and a long run only once its metrics.json exists."""
    name = "mnist_1l_iwae_k5_paper"
    assert list(catalog.shown_runs(tmp_path)) == list(catalog.book_runs())
    (tmp_path / name).mkdir()
    (tmp_path / name / "checkpoint.npz").write_bytes(b"")
    assert name not in catalog.shown_runs(tmp_path)
    (tmp_path / name / "metrics.json").write_text("{}")
    shown = catalog.shown_runs(tmp_path)
    assert list(shown) == list(catalog.book_runs()) + [name]
    assert shown[name].chapters == (1,) and shown[name].config == catalog.paper_recipe_runs()[name]
    assert catalog.config(name, smoke=False) == catalog.paper_recipe_runs()[name]


def test_a_run_in_training_gives_its_shape_a_pace(tmp_path):
    """pace.measured reads a run still in training from its checkpoint's counters: its epochs
    trained on this machine give the pace of its step shape (a queued run of the same shape
    gets an estimate before any run of that shape has finished)."""
    from iwae_lib import run_dir

    assert pace.CHECKPOINT_NAME == run_dir.CHECKPOINT_FILE
    k50 = TrainConfig(k=50, epochs=10, eval_every=0)
    folder = tmp_path / "k50_in_training"
    folder.mkdir()
    write_json(folder / "config.json", {"train": k50.to_dict(), "model": {}})
    elsewhere = {"cpu": "Other CPU", "cpu_count": 2}
    history = [{"epoch": e + 1, "train_seconds": 100.0 * (e + 1) if e < 3 else 300.0 + 30.0 * (e - 2)}
               for e in range(6)]  # three epochs of 100 s elsewhere, then three of 30 s here
    counters = {"epoch": 6, "history": history,
                "sessions": [{"from_epoch": 0, "environment": elsewhere}, {"from_epoch": 3, "environment": HERE}]}
    np.savez(folder / "checkpoint.npz", counters_json=np.array(json.dumps(counters)))
    queued = dataclasses.replace(k50, validation_size=10000, epochs=328)
    assert pace.measured(tmp_path, HERE).epoch_seconds(queued) == pytest.approx(30.0 * 5 / 6)
    assert pace.measured(tmp_path, elsewhere).epoch_seconds(k50) == pytest.approx(100.0)
    (folder / "checkpoint.npz").write_bytes(b"damaged")
    assert pace.measured(tmp_path, HERE).step_seconds == {}
