"""Colab: the set-up cell's logic (scripts/colab_setup.py), run here with the Colab check forced and
pip in dry-run mode; the notebooks' badges and cells generated from _config.yml; clean launch links."""

import importlib.util
import json
import re
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("colab_setup", REPO / "scripts" / "colab_setup.py")
colab_setup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(colab_setup)

CONFIG = yaml.safe_load((REPO / "_config.yml").read_text())


def toc_notebooks():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [REPO / f"{f}.ipynb" for f in files if f.startswith("notebooks/")]


@pytest.mark.parametrize("tf_version, tfp, keras", [
    ("2.15.1", "tensorflow-probability==0.23.*", "tf-keras==2.15.*"),
    ("2.16.2", "tensorflow-probability==0.24.*", "tf-keras==2.16.*"),
    ("2.17.1", "tensorflow-probability==0.24.*", "tf-keras==2.17.*"),
    ("2.18.0", "tensorflow-probability==0.25.*", "tf-keras==2.18.*"),
    ("2.19.0", "tensorflow-probability==0.25.*", "tf-keras==2.19.*"),
    ("2.21.0", "tensorflow-probability==0.25.*", "tf-keras==2.21.*"),
    ("2.23.0", "tensorflow-probability>=0.25", "tf-keras==2.23.*"),  # newer than the table: newest TFP
])
def test_companions_match_the_installed_tensorflow(tf_version, tfp, keras):
    assert colab_setup.companion_requirements(tf_version) == [f"tensorflow=={tf_version}", tfp, keras]


def test_local_version_labels_and_too_old_tensorflow():
    assert colab_setup.companion_requirements("2.19.0+cuda12")[0] == "tensorflow==2.19.0"
    with pytest.raises(ValueError, match="older than 2.15"):
        colab_setup.companion_requirements("2.14.1")


def test_the_choice_for_this_venv_is_what_the_venv_has():
    """The project's own, tested set: TFP and tf-keras as the script would choose them for its TensorFlow."""
    tf_version = metadata.version("tensorflow")
    _, tfp, keras = colab_setup.companion_requirements(tf_version)
    tfp_prefix = tfp.split("==")[1].rstrip("*")
    assert metadata.version("tensorflow-probability").startswith(tfp_prefix)
    assert metadata.version("tf-keras").startswith(keras.split("==")[1].rstrip("*"))


def test_install_commands_keep_tensorflow_and_install_the_clone_without_dependencies(tmp_path):
    companions, library = colab_setup.install_commands(tmp_path, "2.19.0", python="py")
    assert companions == ["py", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "tensorflow==2.19.0", "tensorflow-probability==0.25.*", "tf-keras==2.19.*",
                          "pooch>=1.9,<2"]
    assert library == ["py", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                       "--no-deps", "-e", str(tmp_path)]
    assert not any("requirements" in part for part in companions + library)


@pytest.fixture
def colab(monkeypatch):
    """Pretend to be in Colab: google.colab importable; cwd and sys.path restored afterwards."""
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_the_cell_runs_the_script_on_an_existing_clone_in_dry_run(colab, monkeypatch, capfd):
    monkeypatch.setenv(colab_setup.REPO_DIR_ENV, str(REPO))
    monkeypatch.setenv(colab_setup.DRY_RUN_ENV, "1")
    calls = []
    real_run = subprocess.run

    def recording_run(command, *args, **kwargs):
        calls.append(list(command))
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", recording_run)
    exec(compile(colab_setup.setup_cell(), "colab-cell", "exec"), {"__name__": "__main__"})
    # the folder exists: no clone; the script ran on it; the kernel now works from its notebooks/
    assert calls == [[sys.executable, str(REPO / "scripts" / "colab_setup.py"), "--repo-dir", str(REPO)]]
    assert Path.cwd() == REPO / "notebooks" and sys.path[0] == str(REPO)
    out = capfd.readouterr().out.splitlines()
    tf_version = metadata.version("tensorflow")
    major_minor = ".".join(tf_version.split(".")[:2])
    assert out == [
        f"would run: {sys.executable} -m pip install --quiet --disable-pip-version-check tensorflow=={tf_version} "
        f"'tensorflow-probability==0.25.*' 'tf-keras=={major_minor}.*' 'pooch>=1.9,<2'",
        f"would run: {sys.executable} -m pip install --quiet --disable-pip-version-check --no-deps -e {REPO}",
    ]


def test_the_cell_clones_the_configured_repository_when_the_folder_is_missing(colab, monkeypatch, tmp_path):
    clone = tmp_path / "iwae-book"
    monkeypatch.setenv(colab_setup.REPO_DIR_ENV, str(clone))
    calls = []

    def fake_run(command, *args, **kwargs):  # no network, no pip: record, and make the clone's folders
        calls.append(list(command))
        if command[0] == "git":
            (clone / "notebooks").mkdir(parents=True)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    exec(compile(colab_setup.setup_cell(), "colab-cell", "exec"), {"__name__": "__main__"})
    url = CONFIG["repository"]["url"]
    assert calls[0] == ["git", "clone", "--depth", "1", f"{url}.git", str(clone)]
    assert calls[1][1:] == [str(clone / "scripts" / "colab_setup.py"), "--repo-dir", str(clone)]
    assert Path.cwd() == clone / "notebooks"


def test_outside_colab_the_cell_does_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("ran a command outside Colab"))
    cwd = Path.cwd()
    exec(compile(colab_setup.setup_cell(), "colab-cell", "exec"), {"__name__": "__main__"})
    assert Path.cwd() == cwd


def test_repository_is_read_from_the_config():
    assert colab_setup.repository() == {"url": CONFIG["repository"]["url"].rstrip("/"),
                                        "branch": CONFIG["repository"]["branch"]}


@pytest.mark.parametrize("notebook", toc_notebooks(), ids=lambda p: p.stem)
def test_every_chapter_has_the_generated_badge_and_hidden_setup_cell(notebook):
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    relative = notebook.relative_to(REPO).as_posix()
    first = "".join(nb["cells"][0]["source"])
    assert colab_setup.badge(relative) in first
    assert first.count("colab.research.google.com/github/") == 1
    setup = [c for c in nb["cells"] if colab_setup.is_setup_cell(c)]
    assert len(setup) == 1, "one Colab set-up cell"
    assert "".join(setup[0]["source"]) == colab_setup.setup_cell(), \
        "set-up cell differs from the generated one: python scripts/colab_setup.py --write-cells"
    assert "hide-input" in setup[0]["metadata"].get("tags", [])
    assert nb["cells"].index(setup[0]) == 1  # right after the title, before the imports
    # the repository's address is nowhere else in the notebook
    owner_repo = CONFIG["repository"]["url"].split("github.com/")[1]
    text = "".join("".join(c["source"]) for c in nb["cells"])
    assert text.count(owner_repo) == 2  # the badge and the clone


def test_other_pages_use_the_configured_address():
    url = CONFIG["repository"]["url"]
    for page in [REPO / "README.md", *sorted((REPO / "book").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for found in set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+?(?=\.git\b|[/)\s`]|$)", text)):
            if page.name != "references.md":
                assert found == url, f"{page.name} names {found}, _config.yml says {url}"


def test_launch_links_have_no_dot_segment():
    """sphinx-book-theme builds Colab links as {colab}/github/{org}/{repo}/blob/{branch}/{path_to_book/}{page}."""
    repository = CONFIG["repository"]
    path_to_book = repository.get("path_to_book", "").strip("/")
    assert path_to_book == "", "the book is the repository root: path_to_book must be empty (or absent)"
    prefix = f"{path_to_book}/" if path_to_book else ""
    org_repo = repository["url"].rstrip("/").split("github.com/")[1]
    colab = CONFIG["launch_buttons"]["colab_url"].strip("/")
    link = f"{colab}/github/{org_repo}/blob/{repository['branch']}/{prefix}notebooks/01_iwae_baseline.ipynb"
    assert "/./" not in link
    assert link == colab_setup.colab_url("notebooks/01_iwae_baseline.ipynb")
    # a page built after the last change of _config.yml, when there is one, agrees
    config_time = (REPO / "_config.yml").stat().st_mtime
    for page in REPO.glob("_build/**/html/notebooks/01_iwae_baseline.html"):
        if page.stat().st_mtime > config_time:
            links = re.findall(r'https://colab\.research\.google\.com/github/[^"\s]+', page.read_text(encoding="utf-8"))
            assert links and all("/./" not in found for found in links) and link in links
