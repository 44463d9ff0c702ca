"""The results tables (iwae_lib.chapters.tables): values from results/ and paper.py, and the README and the
landing page are current."""

import json
from pathlib import Path

import pytest

from iwae_lib.chapters import paper, tables

REPO = Path(__file__).resolve().parents[2]


def record(results, name, train, metrics=None):
    folder = results / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"train": train, "model": {}}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def train_config(dataset="mnist", n_stochastic=1, objective="iwae", k=5, estimator="standard"):
    return dict(dataset=dataset, n_stochastic=n_stochastic, objective=objective, k=k, estimator=estimator)


METRICS = {"test_log_likelihood": -86.123, "test_log_likelihood_stderr": 0.2049, "active_units": [21, 4],
           "epochs_completed": 288, "wall_seconds": {"training": 5400.0}}


def test_rows_cover_the_books_cells_with_the_papers_numbers(tmp_path):
    rows = tables.rows(tmp_path)
    scaled = {"mnist_1l_vae_k5", "mnist_1l_iwae_k1", "mnist_1l_iwae_k5", "mnist_1l_iwae_k50"}  # the baselines
    one_layer = [name for o in ("vae", "iwae") for k in (1, 5, 50)
                 for name in ([f"mnist_1l_{o}_k{k}"] if f"mnist_1l_{o}_k{k}" in scaled else []) + [f"mnist_1l_{o}_k{k}_fast"]]
    assert [r["name"] for r in rows] == (
        one_layer
        + [f"mnist_2l_{o}_k{k}_fast" for o in ("vae", "iwae") for k in (1, 5, 50)]
        + ["binarized_mnist_1l_vae_k5", "binarized_mnist_1l_iwae_k5"])
    assert {r["recipe"] for r in rows if r["name"].endswith("_fast")} == {"fast"}
    assert {r["recipe"] for r in rows if not r["name"].endswith("_fast")} == {"scaled paper stages"}
    by_name = {r["name"]: r for r in rows}
    assert by_name["mnist_1l_iwae_k50"]["paper NLL"] == "84.78" and by_name["mnist_1l_iwae_k50"]["paper units"] == "25"
    assert by_name["mnist_2l_iwae_k50_fast"]["paper units"] == "26+7"
    assert by_name["binarized_mnist_1l_iwae_k5"]["paper NLL"] == "87.63"
    assert by_name["binarized_mnist_1l_iwae_k5"]["paper's table"] == "Appendix D, Table 3"
    for dataset, layers, objective, k in tables.cells():
        name = paper.run_name(dataset, layers, objective, k)
        cell_rows = [by_name[n] for n in (name, name + "_fast") if n in by_name]
        assert cell_rows, name
        for row in cell_rows:
            assert float(row["paper NLL"]) == paper.test_nll(dataset, layers, objective, k)
            assert row["state"] == "missing" and row["our NLL"] == "not yet recorded"


def test_the_table_follows_the_books_list_of_runs():
    runs = ["mnist_1l_iwae_k50", "binarized_mnist_2l_vae_k1", "omniglot_1l_iwae_k5", "mnist_1l_iwae_k5_valid",
            "mnist_3l_iwae_k5"]
    assert tables.cells(runs) == [("mnist", 1, "iwae", 50), ("omniglot", 1, "iwae", 5), ("binarized_mnist", 2, "vae", 1)]
    assert tables.cells([]) == []


def test_finished_and_unfinished_runs(tmp_path):
    record(tmp_path, "mnist_2l_iwae_k5_fast", train_config(n_stochastic=2), METRICS)
    record(tmp_path, "mnist_1l_vae_k50_fast", train_config(objective="vae", k=50))  # no metrics.json: unfinished
    by_name = {r["name"]: r for r in tables.rows(tmp_path)}
    done = by_name["mnist_2l_iwae_k5_fast"]
    assert (done["state"], done["our NLL"], done["our units"], done["epochs"], done["time"]) == (
        "finished", "86.12 ± 0.20", "21+4", "288", "1.5 h")
    assert by_name["mnist_1l_vae_k50_fast"]["our NLL"] == "not yet recorded (unfinished run)"
    text = tables.markdown_table(tmp_path, link=lambda name: f"results/{name}")
    line = next(l for l in text.splitlines() if "mnist_2l_iwae_k5" in l)
    assert line == ("| Table 1 | MNIST, dynamic binarization | IWAE, k=5, 2 stochastic layers | 83.89 | 21+5 "
                    "| fast | 86.12 ± 0.20 | 21+4 | 288 | 1.5 h | [`mnist_2l_iwae_k5_fast`](results/mnist_2l_iwae_k5_fast) |")
    missing = next(l for l in text.splitlines() if "mnist_1l_iwae_k50" in l)
    assert missing.endswith("| not yet recorded |  |  |  | `mnist_1l_iwae_k50` |")  # no link to a missing folder
    assert tables.summary(tmp_path).startswith("1 of the 18 runs below is recorded; 1 more is unfinished")


def test_a_run_whose_config_does_not_match_its_name_is_refused(tmp_path):
    record(tmp_path, "mnist_1l_iwae_k5", train_config(k=50), METRICS)
    with pytest.raises(ValueError, match="config.json has {'k': 50}"):
        tables.rows(tmp_path)
    record(tmp_path, "mnist_1l_iwae_k1", train_config(k=1, estimator="dreg"))
    with pytest.raises(ValueError, match="mnist_1l_iwae_k1"):
        tables.run_status(tmp_path, "mnist", 1, "iwae", 1, tables.CellRun("scaled", "scaled", "mnist_1l_iwae_k1"))


def test_the_runs_of_the_studys_choice_join_their_cells(tmp_path, monkeypatch):
    """Once the k=50 study's choice is made, its recorded Table 1 runs get a row after the other
    recipes of their cell, labelled with the study's words (STL for the VAE where the IWAE
    takes DReG), and the summary gives their gaps to the paper apart."""
    from iwae_lib.chapters import catalog

    monkeypatch.setattr(catalog, "MOONSHOT_CHOICE", "fast, DReG, reference Adam")
    iwae = dict(METRICS, test_log_likelihood=-84.9, epochs_completed=328)
    record(tmp_path, "mnist_1l_iwae_k50_fast_dreg_refadam", train_config(k=50, estimator="dreg"), iwae)
    record(tmp_path, "mnist_1l_vae_k5_fast_stl_refadam", train_config(objective="vae", estimator="stl"), METRICS)
    record(tmp_path, "mnist_1l_iwae_k5_fast_dreg_refadam", train_config(estimator="dreg"))  # unfinished: not shown
    by_name = {r["name"]: r for r in tables.rows(tmp_path)}
    record(tmp_path, "mnist_1l_iwae_k50_paper", train_config(k=50), METRICS)
    by_name = {r["name"]: r for r in tables.rows(tmp_path)}
    names = list(by_name)
    assert names.index("mnist_1l_iwae_k50_fast_dreg_refadam") == names.index("mnist_1l_iwae_k50_paper") + 1
    assert names.index("mnist_1l_iwae_k50_paper") == names.index("mnist_1l_iwae_k50_fast") + 1
    assert "mnist_1l_iwae_k5_fast_dreg_refadam" not in by_name
    assert by_name["mnist_1l_iwae_k50_fast_dreg_refadam"]["recipe"] == "fast, DReG, reference Adam"
    assert by_name["mnist_1l_vae_k5_fast_stl_refadam"]["recipe"] == "fast, STL, reference Adam"
    assert by_name["mnist_1l_iwae_k50_fast_dreg_refadam"]["our NLL"] == "84.90 ± 0.20"
    sentence = tables.gap_sentence(list(by_name.values()))
    assert f"-0.35 to +0.12 nats for the 2 runs with the {tables.CHOSEN}" in sentence
    assert "+1.34 nats for the 1 run with the paper's recipe" in sentence
    assert "2 of the 3 recorded runs are worse than the paper" in sentence
    record(tmp_path, "mnist_1l_iwae_k1_fast_dreg_refadam", train_config(k=1), METRICS)  # a standard estimator
    with pytest.raises(ValueError, match="mnist_1l_iwae_k1_fast_dreg_refadam"):
        tables.rows(tmp_path)


def test_readme_and_landing_page_show_the_current_table():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = tables.readme_block(REPO / "results")
    assert readme.count(tables.README_START) == 1 and readme.count(tables.README_END) == 1
    assert block in readme, "README.md's results table is out of date: python -m iwae_lib.chapters.tables --write"
    include = (REPO / tables.BOOK_TABLE).read_text(encoding="utf-8")
    assert include == tables.book_block(REPO / "results"), \
        "book/_generated/results.md is out of date: python -m iwae_lib.chapters.tables --write"
    assert "```{include} _generated/results.md" in (REPO / "book" / "intro.md").read_text(encoding="utf-8")
    assert tables.main(["--check"]) == 0
    # the recorded run is in both, with its own numbers
    metrics = json.loads((REPO / "results" / "mnist_1l_iwae_k5" / "metrics.json").read_text())
    ours = f"{-metrics['test_log_likelihood']:.2f} ± {metrics['test_log_likelihood_stderr']:.2f}"
    readme_line = next(l for l in readme.splitlines() if "`mnist_1l_iwae_k5`" in l)
    book_line = next(l for l in include.splitlines()
                     if "| MNIST, dynamic binarization | IWAE, k=5, 1 stochastic layer |" in l
                     and "| scaled paper stages |" in l)
    for line in (readme_line, book_line):
        assert f"| {paper.test_nll('mnist', 1, 'iwae', 5):.2f} |" in line and f"| {ours} |" in line


def test_the_landing_page_table_leaves_the_bookkeeping_to_the_back_matter(tmp_path):
    """The README's table names each run and its training time; the book's stops at the epochs."""
    url = tables.repository_url()
    assert url.startswith("https://github.com/") and not url.endswith("/")
    record(tmp_path, "mnist_1l_iwae_k5", train_config(), METRICS)
    block = tables.book_block(tmp_path)
    assert "86.12 ± 0.20" in block and "training time" not in block and "mnist_1l_iwae_k5" not in block
    assert "runs below" not in block and block.count("| our epochs (paper: 3280) |") == 1
    assert "| training time | run |" in tables.readme_block(tmp_path)


def test_write_and_check_on_a_copy(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/someone/iwae-book\n")
    (tmp_path / "README.md").write_text(f"# x\n\n{tables.README_START}\nold\n{tables.README_END}\n\nafter\n")
    record(tmp_path / "results", "mnist_1l_iwae_k5", train_config(), METRICS)
    assert tables.main(["--check", "--root", str(tmp_path)]) == 1
    assert tables.main(["--write", "--root", str(tmp_path)]) == 0
    assert tables.main(["--check", "--root", str(tmp_path)]) == 0
    readme = (tmp_path / "README.md").read_text()
    assert "old" not in readme and readme.endswith(f"{tables.README_END}\n\nafter\n") and "86.12 ± 0.20" in readme
    assert "86.12 ± 0.20" in (tmp_path / tables.BOOK_TABLE).read_text()
    with pytest.raises(ValueError, match="no results table markers"):
        tables.replace_readme_block("# no markers\n", "x")


# ----------------------------------------------------------------------------- "How the runs were made"


ENVIRONMENT = {"git_revision": "0123456789abcdef0123456789abcdef01234567+dirty", "cpu": "Some CPU", "cpu_count": 2,
               "gpus": []}


def finished_metrics(epochs, selected=None, hours=1.5, sessions=None, environment=None, stopped_early=False):
    """A metrics.json of a run that trained ``epochs`` epochs at 10 s each (``sessions``: their start epochs)."""
    from iwae_lib.config import TrainConfig

    environment = environment or ENVIRONMENT
    return {"config": TrainConfig(epochs=epochs).to_dict(), "epochs_completed": epochs, "total_epochs": 288,
            "selected_epoch": selected or epochs, "stopped_early": stopped_early,
            "wall_seconds": {"training": hours * 3600},
            "history": [{"epoch": e + 1, "train_seconds": 10.0 * (e + 1)} for e in range(epochs)],
            "environment": environment,
            "training_sessions": [{"from_epoch": e, "from_step": 0, "environment": environment}
                                  for e in (sessions or [0])]}


def test_runs_page_rows_read_each_record(tmp_path):
    from iwae_lib.chapters import catalog
    from iwae_lib.bookkeeping import runs_page

    run = catalog.book_runs()["mnist_1l_iwae_k5_valid"]
    gpu = {**ENVIRONMENT, "cpu": "Other CPU", "gpus": ["NVIDIA H100"]}
    metrics = finished_metrics(120, selected=110, hours=0.5, stopped_early=True, sessions=[0, 60],
                               environment=gpu)
    metrics["training_sessions"][0]["environment"] = ENVIRONMENT
    record(tmp_path, run.name, run.config.to_dict(), metrics)
    [row] = runs_page.rows(tmp_path, {run.name: run})
    assert row["state"] == "recorded" and row["chapters"] == "2"
    assert row["recipe"] == "paper's stages scaled"
    assert row["epochs done / total"] == "120 / 288, stopped early" and row["selected epoch"] == "110"
    assert row["training hours"] == "0.50" and row["training sessions"] == "2"
    assert row["hardware"] == "Some CPU / Other CPU, 2 cores + NVIDIA H100"
    assert row["recorded with revision"] == "`0123456+dirty`"
    assert row["command"] == ("python -m iwae_lib train --out results/mnist_1l_iwae_k5_valid --epochs 288 "
                              "--validation-size 10000 --patience 10")
    [missing] = runs_page.rows(tmp_path / "elsewhere", {run.name: run})
    assert missing["state"] == "not recorded" and missing["epochs done / total"] == "not recorded (of 288)"
    assert missing["command"] == row["command"]


def test_runs_page_covers_the_catalog_with_recipes_and_commands():
    from iwae_lib.chapters import catalog
    from iwae_lib.bookkeeping import runs_page

    runs = catalog.shown_runs(REPO / "results")  # the book's runs and the recorded long runs
    rows = runs_page.rows(REPO / "results")
    assert [row["name"] for row in rows] == list(runs)
    assert set(catalog.book_runs()) <= set(runs)
    by_name = {row["name"]: row for row in rows}
    assert by_name["mnist_1l_iwae_k50_fast"]["recipe"] == "fast"
    assert by_name["mnist_1l_iwae_k5"]["recipe"] == "paper's stages scaled"
    if "mnist_1l_iwae_k5_paper" in by_name:  # a long run, once recorded
        assert by_name["mnist_1l_iwae_k5_paper"]["recipe"] == "paper's recipe"
    assert by_name["study_k5_e30_linear_3e-3_ema"]["recipe"] == "linear decay from 0.003, weight average"
    assert by_name["mnist_1l_iwae_k64_constant"]["recipe"] == "constant rate 0.001"
    assert by_name["mnist_1l_iwae_k5_snapshots"]["command"] == "python -m iwae_lib record mnist_1l_iwae_k5_snapshots"
    assert all(row["command"].startswith(f"python -m iwae_lib train --out results/{row['name']} ")
               for row in rows if runs[row["name"]].kind == "train")
    assert runs_page.recipe_text(catalog.table1_recipe_runs()["mnist_2l_iwae_k5_fast"]) == "fast"


def test_runs_in_progress_are_listed_by_name_recipe_and_epochs(tmp_path):
    from iwae_lib import recipes
    from iwae_lib.bookkeeping import runs_page

    folder = record(tmp_path, "mnist_1l_iwae_k5_paper", recipes.recipe_config("paper", k=5).to_dict())
    (folder / "checkpoint.npz").write_bytes(b"")
    (folder / "progress.json").write_text(json.dumps({"epochs_completed": 40, "total_epochs": 3280, "history": []}))
    record(tmp_path, "finished", train_config(), METRICS)  # metrics.json: not in progress
    record(tmp_path, "no_checkpoint", train_config())
    assert runs_page.in_progress(tmp_path) == [
        {"name": "mnist_1l_iwae_k5_paper", "recipe": "paper's recipe", "epochs_done": 40, "total_epochs": 3280}]
    assert runs_page.in_progress(tmp_path / "missing") == []


def test_runs_page_is_current_and_in_the_back_matter():
    """book/_generated/runs.md holds every catalog run as results/ records it, without the
    progress of runs in training (so it stays current while they train), and book/runs.md
    includes it, in the back matter before the execution times."""
    import yaml

    from iwae_lib import chapters
    from iwae_lib.chapters import catalog
    from iwae_lib.bookkeeping import runs_page

    generated = (REPO / runs_page.RUNS_TABLE).read_text(encoding="utf-8")
    assert generated == runs_page.book_block(REPO / "results", REPO, tables.repository_url(REPO)), \
        "book/_generated/runs.md is out of date: python -m iwae_lib.chapters.tables --write"
    for name in catalog.book_runs():
        assert f"`{name}`" in generated
    for run in runs_page.in_progress(REPO / "results"):
        assert run["name"] not in generated
    page = (REPO / "book" / "runs.md").read_text(encoding="utf-8")
    assert page.startswith("# How the runs were made\n")
    assert chapters.RUNS_PAGE == "How the runs were made"
    assert "```{include} _generated/runs.md" in page and "```{runs-in-progress}" in page
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    back = next(part for part in toc["parts"] if part["caption"] == "Back matter")
    files = [chapter["file"] for chapter in back["chapters"]]
    assert files.index("book/runs") == files.index("book/execution") - 1


def test_the_summary_says_how_far_the_runs_are_from_the_paper(tmp_path):
    assert tables.gap_sentence(tables.rows(tmp_path)) == ""
    record(tmp_path, "mnist_2l_iwae_k5_fast", train_config(n_stochastic=2), METRICS)  # 86.12 against 83.89
    record(tmp_path, "mnist_1l_iwae_k5_fast", train_config(), {**METRICS, "test_log_likelihood": -85.04})  # 85.54
    record(tmp_path, "mnist_1l_iwae_k5", train_config(), METRICS)  # 86.12 against 85.54
    assert tables.summary(tmp_path).endswith(
        " Our test NLL minus the paper's (positive: ours is worse) is -0.50 to +2.23 nats for the 2 runs with "
        "the fast recipe and +0.58 nats for the 1 run with the scaled paper stages: 2 of the 3 recorded runs are "
        "worse than the paper.")


def test_runs_page_numbers_chapters_as_the_table_of_contents_does(tmp_path):
    from iwae_lib.bookkeeping import runs_page

    (tmp_path / "notebooks").mkdir()
    for name in ("01_a", "02_b", "05_c", "10_d"):
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text("{}")
    (tmp_path / "_toc.yml").write_text(
        "root: book/intro\nparts:\n  - caption: Chapters\n    numbered: true\n    chapters:\n"
        "      - file: notebooks/01_a\n      - file: notebooks/02_b\n      - file: notebooks/05_c\n"
        "  - caption: More\n    chapters:\n      - file: notebooks/10_d\n")
    documents = runs_page.chapter_documents(tmp_path)
    assert documents == {1: ("notebooks/01_a", "1"), 2: ("notebooks/02_b", "2"), 5: ("notebooks/05_c", "3"),
                         10: ("notebooks/10_d", "10")}
    assert runs_page._chapter_links("2, 5, 4", documents) == (
        "{doc}`2 </notebooks/02_b>`, {doc}`3 </notebooks/05_c>`, 4")


def test_recipe_text_names_the_estimator_and_adam_settings_that_are_not_the_papers():
    from iwae_lib import recipes
    from iwae_lib.bookkeeping import runs_page

    assert runs_page.recipe_text(recipes.recipe_config("fast", k=50)) == "fast"
    assert runs_page.recipe_text(recipes.recipe_config("fast", k=50, beta1=0.99, adam_v_init=1.0)) == (
        "fast, Adam beta1 0.99, second moments from 1")
    assert runs_page.recipe_text(recipes.recipe_config("paper")) == "paper's recipe"
    assert runs_page.recipe_text(recipes.recipe_config("fast", k=50, estimator="dreg", beta1=0.99)) == (
        "fast, DReG gradients, Adam beta1 0.99")
    assert runs_page.recipe_text(recipes.recipe_config("scaled", estimator="stl")) == (
        "paper's stages scaled, STL gradients")
    assert runs_page.recipe_text(recipes.recipe_config("scaled", batch_size=100)) == (
        "paper's stages scaled, batch 100")


def test_a_paper_recipe_run_joins_the_table_once_it_is_recorded(tmp_path):
    """A run of the paper's own recipe (a long run of the catalog) gets a row right after the
    fast run of its cell once its metrics.json exists, and the gap sentence names its recipe."""
    name = "mnist_1l_iwae_k5_paper"
    folder = record(tmp_path, name, train_config(k=5))
    (folder / "checkpoint.npz").write_bytes(b"")
    assert name not in [row["name"] for row in tables.rows(tmp_path)]  # unfinished: not shown
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    rows = tables.rows(tmp_path)
    names = [row["name"] for row in rows]
    assert names.index(name) == names.index("mnist_1l_iwae_k5_fast") + 1
    row = rows[names.index(name)]
    assert (row["recipe"], row["paper NLL"], row["our NLL"]) == ("paper's recipe", "85.54", "86.12 ± 0.20")
    assert "+0.58 nats for the 1 run with the paper's recipe" in tables.gap_sentence(rows)


def test_a_cell_only_a_long_run_fills_joins_the_table_once_recorded(tmp_path):
    """Appendix D at k=1 has no run among the book's runs, only a long run: its cell gets a row
    (in table order, before the cell at k=5) once that run's metrics.json exists."""
    name = "binarized_mnist_1l_vae_k1"
    record(tmp_path, name, train_config(dataset="binarized_mnist", objective="vae", k=1))
    assert name not in [row["name"] for row in tables.rows(tmp_path)]  # unfinished: not shown
    (tmp_path / name / "metrics.json").write_text(json.dumps(METRICS))
    names = [row["name"] for row in tables.rows(tmp_path)]
    assert names.index(name) == names.index("binarized_mnist_1l_vae_k5") - 1
    assert tables.rows(tmp_path)[names.index(name)]["paper NLL"] == "88.71"
