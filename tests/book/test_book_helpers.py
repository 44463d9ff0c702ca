"""Unit tests of the notebooks' helpers: iwae_lib.chapters, iwae_lib.chapters.plotting, iwae_lib.chapters.paper."""

import ast
import json
import shutil
import os
from pathlib import Path

import numpy as np
import pytest

from iwae_lib import chapters, checkpoints, models
from iwae_lib.chapters import paper, plotting
from iwae_lib.config import TrainConfig

# ----------------------------------------------------------------------------- profiles


@pytest.mark.parametrize("env, expected", [
    ({}, "full"),
    ({"IWAE_SMOKE": "1"}, "smoke"),
    ({"IWAE_SMOKE": "0"}, "full"),
    ({"IWAE_PROFILE": "smoke"}, "smoke"),
    ({"IWAE_PROFILE": "full"}, "full"),
    ({"IWAE_PROFILE": "FULL", "IWAE_SMOKE": "1"}, "smoke"),
])
def test_profile_from_environment(monkeypatch, env, expected):
    monkeypatch.delenv("IWAE_SMOKE", raising=False)
    monkeypatch.delenv("IWAE_PROFILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert chapters.profile() == expected
    assert chapters.is_smoke() == (expected == "smoke")
    assert ("Smoke profile" in chapters.profile_note()) == (expected == "smoke")
    assert max(len(line) for line in chapters.profile_note().splitlines()) <= chapters.PAGE_COLUMNS


def test_notebook_code_fits_the_page():
    """The rendered pages show PAGE_COLUMNS characters of a code cell; longer lines are cut."""
    repo = Path(__file__).resolve().parents[2]
    notebooks = sorted((repo / "notebooks").glob("*.ipynb"))
    in_toc = {line.split("notebooks/")[1].strip() for line in (repo / "_toc.yml").read_text().splitlines()
              if "file: notebooks/" in line}
    assert {path.stem for path in notebooks} == in_toc and len(notebooks) >= 9
    too_long = [f"{path.name}: {line}" for path in notebooks
                for cell in json.loads(path.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "code"
                for line in "".join(cell["source"]).splitlines() if len(line) > chapters.PAGE_COLUMNS]
    assert not too_long, "code lines wider than the page:\n" + "\n".join(too_long)


def test_every_notebook_cell_has_a_unique_id():
    """nbformat 4.5 cells carry an id (nbformat warns without one, and will refuse)."""
    repo = Path(__file__).resolve().parents[2]
    for path in sorted((repo / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        ids = [cell.get("id") for cell in cells]
        assert None not in ids and len(set(ids)) == len(ids), path.name


class _Renamed(ast.NodeTransformer):
    """Names and arguments replaced by v0, v1, ... in the order they first appear."""

    def __init__(self):
        self.names = {}

    def _rename(self, name):
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node):
        node.id = self._rename(node.id)
        return node

    def visit_arg(self, node):
        node.arg, node.annotation = self._rename(node.arg), None
        return node


def _code_cell_trees(cells):
    """The syntax tree of each code cell, IPython magics left out."""
    for cell in cells:
        if cell["cell_type"] == "code":
            yield ast.parse("\n".join(line for line in "".join(cell["source"]).splitlines()
                                      if not line.lstrip().startswith(("%", "!"))))


def _functions_written(path):
    """(name, body) of every top-level function a notebook's code cells define; the body is
    its syntax tree with the names renamed in order, without the function's own name, its
    docstring, comments and layout, so that a copy with other names is the same body."""
    written = []
    for tree in _code_cell_trees(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    body = body[1:]  # the docstring
                renamed = _Renamed()
                for arg in node.args.args:  # the arguments take the first names, in order
                    renamed.visit(arg)
                body = [renamed.visit(statement) for statement in body]
                written.append((node.name, f"{len(node.args.args)} {ast.dump(ast.Module(body=body, type_ignores=[]))}"))
    return written


def test_no_notebook_copies_another_notebooks_function():
    """A function is written on the page that teaches it; a later chapter calls the library's
    version (which that page checks its own against) instead of typing it again."""
    repo = Path(__file__).resolve().parents[2]
    where = {}
    for path in sorted((repo / "notebooks").glob("*.ipynb")):
        for name, body in _functions_written(path):
            where.setdefault(body, []).append(f"{path.stem}: {name}")
    copies = [places for places in where.values()
              if len({place.split(":")[0] for place in places}) > 1]
    assert not copies, "the same function in several notebooks:\n" + "\n".join(map(str, copies))


def _page_parameters(cells) -> set:
    """Names assigned at the top level of a notebook's code cells (SMOKE, LIVE_STEPS, ...)."""
    return {target.id for tree in _code_cell_trees(cells) for node in tree.body
            if isinstance(node, ast.Assign) for target in node.targets if isinstance(target, ast.Name)}


def test_prose_gives_values_not_parameter_names():
    """A sentence reads "2000 steps", not "`LIVE_STEPS` steps": where the prose needs a page
    parameter's value it glues it, so the rendered page shows the number the cells used."""
    repo = Path(__file__).resolve().parents[2]
    named = []
    for path in sorted((repo / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        parameters = {name for name in _page_parameters(cells) if name.isupper()}
        for cell in cells:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                named += [f"{path.stem} {cell['id']}: {name}" for name in sorted(parameters)
                          if f"`{name}`" in text]
    assert not named, "\n".join(named)


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("IWAE_PROFILE", "fast")
    with pytest.raises(ValueError, match="IWAE_PROFILE must be one of smoke, full"):
        chapters.profile()


# ----------------------------------------------------------------------------- paths


def test_repo_root_and_results_dir(monkeypatch, tmp_path):
    root = chapters.repo_root()
    assert (root / "iwae_lib" / "chapters" / "__init__.py").is_file()
    monkeypatch.delenv("IWAE_RESULTS_DIR", raising=False)
    assert chapters.results_dir() == root / "results"
    monkeypatch.setenv("IWAE_RESULTS_DIR", str(tmp_path))
    assert chapters.results_dir() == tmp_path.resolve()


def test_relative_data_dir_is_resolved_against_the_repository(monkeypatch):
    monkeypatch.setenv("IWAE_DATA_DIR", "../shared/data")
    chapters.resolve_data_dir_env()
    assert Path(os.environ["IWAE_DATA_DIR"]) == (chapters.repo_root() / "../shared/data").resolve()
    monkeypatch.setenv("IWAE_DATA_DIR", "/absolute/stays")
    chapters.resolve_data_dir_env()
    assert os.environ["IWAE_DATA_DIR"] == "/absolute/stays"


# ----------------------------------------------------------------------------- train_or_load


def _fake_run(folder, name, config, test_ll=-90.0):
    """A finished run directory as training.finish writes it, with made-up numbers."""
    run = folder / name
    run.mkdir(parents=True)
    weights = models.init_params(config.model_config(), seed=1)
    checkpoints.save_arrays(run / "weights.npz", weights)
    metrics = {"finished": True, "config": config.to_dict(), "model": config.model_config().to_dict(),
               "epochs_completed": 12, "total_epochs": 12, "selected_epoch": 10, "stopped_early": False,
               "test_log_likelihood": test_ll, "test_log_likelihood_stderr": 0.3, "train_log_likelihood": -88.0,
               "active_units": [21], "history": [{"epoch": 10, "test_bound": -95.0}, {"epoch": 12, "test_bound": -94.0}],
               "wall_seconds": {"training": 7200.0}, "environment": {"git_revision": "0123456789abcdef+dirty",
                                                                      "cpu": "test cpu", "gpus": []}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return weights


def test_train_or_load_loads_a_recorded_run_in_the_full_profile(monkeypatch, tmp_path):
    config = TrainConfig(epochs=12, k=5)
    weights = _fake_run(tmp_path, "fake_run", config)
    monkeypatch.setattr(chapters, "results_dir", lambda: tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("a recorded run must not be trained again")

    monkeypatch.setattr("iwae_lib.training.train", no_training)
    record = chapters.train_or_load("fake_run", config, smoke=False)
    assert record.source == "recorded"
    assert record.test_log_likelihood == -90.0 and record.active_units == [21]
    assert record.config == config and record.config_differences() == []
    assert set(record.weights) == set(weights)
    assert all(np.array_equal(record.weights[n], weights[n]) for n in weights)
    assert record.training_hours == pytest.approx(2.0)
    text = record.describe()
    assert "fake_run" in text and "0123456789+dirty" in text and "12 of 12 epochs" in text and "2.00 h" in text
    [entry] = chapters.provenance({"baseline": record})
    assert all(len(line) <= chapters.PAGE_COLUMNS for line in entry.splitlines()) and "\n    " in entry
    assert " ".join(line.strip() for line in entry.splitlines()) == f"baseline: {text}"


def test_describe_names_configuration_differences(monkeypatch, tmp_path):
    _fake_run(tmp_path, "fake_run", TrainConfig(epochs=12, k=5))
    monkeypatch.setattr(chapters, "results_dir", lambda: tmp_path)
    record = chapters.train_or_load("fake_run", TrainConfig(epochs=40, k=5), smoke=False)
    assert record.config_differences() == ["epochs"]
    assert "differs from this notebook's configuration in: epochs" in record.describe()


def test_smoke_profile_never_reads_results(monkeypatch, tmp_path):
    config = TrainConfig(epochs=12, k=5)
    _fake_run(tmp_path / "results", "fake_run", config, test_ll=-1.0)
    monkeypatch.setattr(chapters, "results_dir", lambda: tmp_path / "results")
    monkeypatch.setenv("IWAE_RUNS_DIR", str(tmp_path / "runs"))
    calls = []

    def fake_train(cfg, out, progress=True, dataset=None):
        calls.append(out)
        _fake_run(out.parent, out.name, cfg, test_ll=-123.0)

    monkeypatch.setattr("iwae_lib.training.train", fake_train)
    monkeypatch.setattr(chapters, "dataset", lambda *args: None)
    (tmp_path / "runs" / "smoke" / "fake_run").mkdir(parents=True)  # a stale smoke run is replaced
    record = chapters.train_or_load("fake_run", config, smoke=True)
    assert calls == [tmp_path / "runs" / "smoke" / "fake_run"]
    assert record.source == "trained now" and record.test_log_likelihood == -123.0
    assert chapters.missing_runs(["fake_run", "other"]) == ["other"]


def test_only_recorded_runs_are_shown_outside_the_smoke_profile(monkeypatch, tmp_path):
    config = TrainConfig(epochs=12, k=5)
    _fake_run(tmp_path / "results", "done", config, test_ll=-1.0)
    monkeypatch.setattr(chapters, "results_dir", lambda: tmp_path / "results")
    monkeypatch.setenv("IWAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr("iwae_lib.training.train",
                        lambda cfg, out, progress=True, dataset=None: _fake_run(out.parent, out.name, cfg, -2.0))
    monkeypatch.setattr(chapters, "dataset", lambda *args: None)
    configs = {"done": config, "unfinished": config}
    monkeypatch.delenv("IWAE_SMOKE", raising=False)
    monkeypatch.delenv("IWAE_PROFILE", raising=False)
    shown = chapters.train_or_load_recorded(configs, progress=False)
    assert list(shown) == ["done"] and shown["done"].test_log_likelihood == -1.0
    monkeypatch.setenv("IWAE_SMOKE", "1")
    shown = chapters.train_or_load_recorded(configs, progress=False)
    assert list(shown) == ["done", "unfinished"]
    assert all(record.test_log_likelihood == -2.0 for record in shown.values())  # tiny stand-ins


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights for run 'absent'"):
        chapters.load_weights("absent", tmp_path)


def test_log_weights_batches_match_shapes():
    config = models.paper_model(1)
    weights = models.init_params(config, seed=0)
    x = (np.random.default_rng(0).random((7, 784)) < 0.3).astype(np.float32)
    log_w = chapters.log_weights(weights, config, x, k=3, seed=1, batch_size=3)
    assert log_w.shape == (3, 7) and np.all(np.isfinite(log_w)) and np.all(log_w < 0)
    with pytest.raises(ValueError, match=r"x must have shape \[N, 784\]"):
        chapters.log_weights(weights, config, x[:, :10], k=3)


# ----------------------------------------------------------------------------- plotting


def test_tile_places_images_row_by_row():
    images = np.stack([np.full(784, i / 10, np.float32) for i in range(5)])
    mosaic = plotting.tile(images, ncols=3, pad=1, fill=-1.0)
    assert mosaic.shape == (2 * 29 - 1, 3 * 29 - 1)
    assert mosaic[0, 0] == 0.0 and mosaic[0, 29] == pytest.approx(0.1) and mosaic[29, 29] == pytest.approx(0.4)
    assert mosaic[28, 0] == -1.0 and mosaic[40, 70] == -1.0  # gap and empty cell
    with pytest.raises(ValueError, match=r"\[N, 784\] or \[N, 28, 28\]"):
        plotting.tile(np.zeros((3, 100)))


def test_image_figures():
    images = np.random.default_rng(0).random((12, 28, 28))
    fig = plotting.image_grid(images, ncols=5, title="digits")
    assert len(fig.axes) == 1 and len(fig.axes[0].images) == 1
    assert fig.axes[0].images[0].get_array().shape == (3 * 29 - 1, 5 * 29 - 1)
    assert fig.axes[0].get_title() == "digits"
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    rows = plotting.image_rows({"a": images[:4], "b": images[4:8].reshape(4, 784)})
    assert len(rows.axes) == 2 and all(len(ax.images) == 1 for ax in rows.axes)


def test_learning_curves_skip_missing_keys_and_mark_epochs():
    history = [{"epoch": 1, "train_bound": -120.0}, {"epoch": 2, "train_bound": -110.0, "test_bound": -112.0},
               {"epoch": 3, "train_bound": -105.0}, {"epoch": 4, "train_bound": -100.0, "test_bound": -104.0}]
    fig = plotting.learning_curves({"run": history}, key="test_bound")
    (line,) = fig.axes[0].lines
    assert list(line.get_xdata()) == [2, 4] and list(line.get_ydata()) == [-112.0, -104.0]
    fig = plotting.learning_curves({"a": history, "b": history}, key=["train_bound", "test_bound"], mark={"a": 2})
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 5  # 2 runs x 2 keys + 1 marker
    assert len(fig.axes[0].get_legend().get_texts()) == 4


def test_learning_curves_against_hours_with_reference_lines():
    history = [{"epoch": 1, "train_seconds": 1800.0, "test_bound": -95.0},
               {"epoch": 2, "train_seconds": 5400.0, "test_bound": -90.0}]
    fig = plotting.learning_curves({"run": history}, x="hours", hlines={"paper": -85.0}, mark={"run": 2})
    ax = fig.axes[0]
    curve, marker, line = ax.lines
    assert list(curve.get_xdata()) == [0.5, 1.5] and list(curve.get_ydata()) == [-95.0, -90.0]
    assert list(marker.get_xdata()) == [1.5] and list(marker.get_ydata()) == [-90.0]
    assert list(line.get_ydata()) == [-85.0, -85.0] and ax.get_xlabel() == "training hours"
    with pytest.raises(ValueError, match="x must be one of"):
        plotting.learning_curves({"run": history}, x="steps")


def test_learning_curves_end_with_each_runs_final_estimate():
    """A run's final estimate sits at the last x of its curve, in its colour; the legend
    names the estimates once; a run without one gets no star."""
    fast = [{"epoch": 10, "train_seconds": 3600.0, "test_bound": -90.0},
            {"epoch": 20, "train_seconds": 9000.0, "test_bound": -88.0}]
    slow = [{"epoch": 10, "train_seconds": 1800.0, "test_bound": -92.0}]
    finals = {"fast": -86.5, "slow": -90.25, "absent": -80.0}
    fig = plotting.learning_curves({"fast": fast, "slow": slow, "other": slow}, x="hours", finals=finals,
                                   finals_label="k=5000 estimate")
    ax = fig.axes[0]
    stars = [line for line in ax.lines if line.get_marker() == "*" and len(line.get_xdata())]
    assert [(list(s.get_xdata()), list(s.get_ydata())) for s in stars] == [([2.5], [-86.5]), ([0.5], [-90.25])]
    curves = {line.get_label(): line for line in ax.lines if line.get_marker() != "*"}
    assert [s.get_color() for s in stars] == [curves["fast"].get_color(), curves["slow"].get_color()]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fast", "slow", "other", "k=5000 estimate"]
    plain = plotting.learning_curves({"fast": fast}, finals={"absent": -80.0})
    assert len(plain.axes[0].lines) == 1 and [t.get_text() for t in plain.axes[0].get_legend().get_texts()] == ["fast"]


def test_bound_vs_k_and_other_figures():
    fig = plotting.bound_vs_k([1, 5, 50], {"vae": [-90, -88, -87], "iwae": [-92, -87, -85]}, reference={"log p": -84})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.lines) == 3
    with pytest.raises(ValueError, match="3 values of k"):
        plotting.bound_vs_k([1, 5, 50], {"vae": [-90, -88]})
    fig = plotting.active_units({"m": [np.array([1.0, 1e-4, 0.5])]}, threshold=1e-2)
    assert list(fig.axes[0].lines[0].get_ydata()) == pytest.approx([0.0, np.log10(0.5), -4.0])
    fig = plotting.distributions({"a": np.arange(10.0)}, xlabel="x")
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "x"
    fig = plotting.density_2d(np.zeros((4, 5)), extent=(0, 1, 0, 1), points=np.zeros((3, 2)))
    assert len(fig.axes) == 2 and fig.axes[0].images[0].get_array().shape == (4, 5)  # image + colorbar


def test_results_table_puts_paper_columns_next_to_ours():
    records = {"mnist_1l_iwae_k5": {"test_log_likelihood": -85.123, "active_units": [22]},
               "other": {"test_log_likelihood": -90.0, "active_units": [16, 5]}}
    table = plotting.results_table(records, paper.table1_rows("mnist", 1))
    assert list(table.columns) == ["test NLL", "test NLL (paper)", "active units", "active units (paper)"]
    assert table.loc["mnist_1l_iwae_k5", "test NLL"] == 85.12
    assert table.loc["mnist_1l_iwae_k5", "test NLL (paper)"] == 85.54
    assert table.loc["mnist_1l_iwae_k5", "active units (paper)"] == "22"
    assert table.loc["other", "active units"] == "16+5"
    custom = plotting.results_table(records, columns={"ll": "test_log_likelihood"}, decimals=1)
    assert list(custom["ll"]) == [-85.1, -90.0]


@pytest.mark.parametrize("recorded_epochs, expected_parent", [(12, "results"), (40, "runs")])
def test_an_unfinished_recorded_run_is_resumed_only_with_the_same_config(monkeypatch, tmp_path, recorded_epochs,
                                                                         expected_parent):
    config = TrainConfig(epochs=12, k=5)
    unfinished = tmp_path / "results" / "long_run"
    unfinished.mkdir(parents=True)
    recorded = TrainConfig(epochs=recorded_epochs, k=5)
    checkpoints.save_json(unfinished / "config.json", {"train": recorded.to_dict()})
    (unfinished / "checkpoint.npz").write_bytes(b"placeholder")
    monkeypatch.setattr(chapters, "results_dir", lambda: tmp_path / "results")
    monkeypatch.setenv("IWAE_RUNS_DIR", str(tmp_path / "runs"))
    calls = []

    def fake_train(cfg, out, progress=True, dataset=None):
        calls.append(out)
        shutil.rmtree(out, ignore_errors=True)
        _fake_run(out.parent, out.name, cfg)

    monkeypatch.setattr("iwae_lib.training.train", fake_train)
    monkeypatch.setattr(chapters, "dataset", lambda *args: None)
    record = chapters.train_or_load("long_run", config, smoke=False)
    assert calls == [tmp_path / expected_parent / "long_run"] and record.source == "trained now"


def test_glue_hands_myst_plain_python_numbers():
    from iwae_lib import chapters

    value = chapters.glue("test_glue_value", np.float64(1.25))
    assert type(value) is float and value == 1.25
    assert type(chapters.glue("test_glue_count", np.int64(3))) is int
