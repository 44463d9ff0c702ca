"""The book build keeps the profiles apart and never trains in the full profile.

On a one-chapter fixture book (its own results folder, one tiny run in its list of runs):
a smoke build, then a full build that refuses while the run is missing (nothing executed),
then the run is recorded and the full build shows the recorded run, not the smoke one; a
change in the results folder makes the full build execute the chapter again.
SLOW-ish: four builds of one small chapter (about a minute on two cores).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from iwae_lib import training
from iwae_lib.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TINY = dict(train_size=200, schedule="constant", epochs=2, k=5, steps_per_call=10, eval_every=0, final_k=20,
            final_test_size=50, final_train_size=20, seed=5)

CHAPTER_CODE = f"""\
import dataclasses
from iwae_lib import chapters
from iwae_lib.config import TrainConfig
config = TrainConfig(**{TINY!r})
if chapters.is_smoke():
    config = dataclasses.replace(config, epochs=1)
record = chapters.train_or_load("tiny_run", config, progress=False)
print("R" "UN:", record.source, record.run_dir.parent.name, record.metrics["epochs_completed"],
      f"{{record.test_log_likelihood:.6f}}")
print("SI" "TE:", chapters.building_site())
"""

DRIVER = f"""\
import sys
from iwae_lib.chapters import build, catalog
from iwae_lib.config import TrainConfig
runs = {{"tiny_run": catalog.BookRun("tiny_run", TrainConfig(**{TINY!r}), (1,))}}
try:
    print("HTML:", build.build(sys.argv[1], sys.argv[2], runs=runs))
except RuntimeError as err:
    print(err, file=sys.stderr)
    sys.exit(1)
"""


def write_book(folder: Path):
    folder.mkdir(parents=True)
    (folder / "_config.yml").write_text(textwrap.dedent("""\
        title: Fixture book
        author: tests
        only_build_toc_files: true
        execute:
          execute_notebooks: cache
          timeout: 600
          allow_errors: false
          stderr_output: remove
        """))
    (folder / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n")
    (folder / "intro.md").write_text("# Fixture\n\nOne chapter.\n")
    lines = CHAPTER_CODE.splitlines(keepends=True)
    notebook = {"cells": [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": ["# Chapter\n"]},
                          {"cell_type": "code", "execution_count": None, "id": "run", "metadata": {}, "outputs": [],
                           "source": lines}],
                "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                             "language_info": {"name": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (folder / "chapter.ipynb").write_text(json.dumps(notebook, indent=1) + "\n")


def run_line(html: Path) -> str:
    """The chapter's printed line (the code prints "R" "UN:", so only the output holds "RUN:")."""
    text = (html / "chapter.html").read_text()
    start = text.index("RUN:")
    return text[start:text.index("\n", start)].strip()


@pytest.fixture
def fixture_env(real_data_dir, tmp_path):
    env = dict(os.environ, IWAE_RESULTS_DIR=str(tmp_path / "results"), IWAE_RUNS_DIR=str(tmp_path / "runs"),
               IPYTHONDIR=str(REPO / ".ipython"), IWAE_DATA_DIR=str(real_data_dir))
    for name in ("IWAE_SMOKE", "IWAE_PROFILE"):
        env.pop(name, None)
    (tmp_path / "driver.py").write_text(DRIVER)
    write_book(tmp_path / "book")
    return env, tmp_path


def build(env, tmp_path, profile):
    result = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "book"), profile],
                            env=env, capture_output=True, text=True, timeout=900)
    return result, result.stdout[-4000:] + result.stderr[-4000:]


@pytest.mark.slow
def test_smoke_then_full_builds_show_their_own_runs(fixture_env):
    env, tmp = fixture_env
    book, results = tmp / "book", tmp / "results"

    result, log = build(env, tmp, "smoke")
    assert result.returncode == 0, log
    smoke_html = book / "_build" / "smoke" / "html"
    assert run_line(smoke_html) == "RUN: trained now smoke 1 " + run_line(smoke_html).split()[-1]

    result, log = build(env, tmp, "full")  # the run is not recorded: refuse, execute nothing
    assert result.returncode == 1, log
    assert "tiny_run (missing" in result.stderr and "IWAE_SMOKE=1 bash scripts/build_book.sh" in result.stderr
    assert "python -m iwae_lib train --out results/tiny_run" in result.stderr
    assert not (book / "_build" / "full").exists() and not (tmp / "runs" / "tiny_run").exists()

    metrics = training.train(TrainConfig(**TINY), results / "tiny_run", progress=False)
    result, log = build(env, tmp, "full")
    assert result.returncode == 0, log
    full_html = book / "_build" / "full" / "html"
    assert run_line(full_html) == f"RUN: recorded results 2 {metrics['test_log_likelihood']:.6f}"
    for html in (smoke_html, full_html):  # the kernels knew they were making a static site
        assert "SITE: True" in (html / "chapter.html").read_text()
    assert "trained now" not in (full_html / "chapter.html").read_text()
    assert run_line(smoke_html).startswith("RUN: trained now smoke 1")  # the smoke site is untouched

    changed = dict(metrics, test_log_likelihood=-123.456789)  # results/ changed: the chapter runs again
    (results / "tiny_run" / "metrics.json").write_text(json.dumps(changed))
    result, log = build(env, tmp, "full")
    assert result.returncode == 0, log
    assert run_line(full_html) == "RUN: recorded results 2 -123.456789"
    assert len(list((book / "_build" / "full" / "jupyter_cache").iterdir())) == 1  # the old key's cache is gone
