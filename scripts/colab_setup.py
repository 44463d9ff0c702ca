"""Set up a Google Colab runtime for the book's notebooks, and write their Colab cells.

Every chapter's first code cell (hidden on the website) runs only in Colab: it clones the
repository (unless the folder already exists), runs this script, and then works from the
clone's ``notebooks/`` folder. This script keeps Colab's own TensorFlow and installs beside it
what the library needs and Colab lacks:

* ``tensorflow-probability`` and ``tf-keras`` in the versions made for the installed
  TensorFlow (:func:`companion_requirements`), with TensorFlow itself pinned to the
  installed version so that pip never replaces it;
* pooch, which fetches the data files (:data:`LIBRARY_EXTRAS`);
* the library from the clone, ``pip install --no-deps -e <clone>``.

The desktop ``requirements.txt`` is not used there: it pins a TensorFlow that Colab does not
have. Uses the standard library only: in Colab it runs before the library can be imported.

    python scripts/colab_setup.py [--repo-dir DIR] [--dry-run]   # install (Colab's cell runs this)
    python scripts/colab_setup.py --write-cells                   # rewrite the notebooks' badge and cell

``--dry-run`` (or ``IWAE_COLAB_DRY_RUN=1``) prints the pip commands instead of running them.
The notebooks' Colab badge and set-up cell are generated from ``_config.yml``'s
``repository`` (url and branch), the one place the repository's address is written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLAB_REPO_DIR = "/content/iwae-book"
DRY_RUN_ENV = "IWAE_COLAB_DRY_RUN"
REPO_DIR_ENV = "IWAE_REPO_DIR"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

#: TensorFlow (major, minor) -> the tensorflow-probability release tested against it
#: (TFP's release notes: 0.23 for TF 2.15, 0.24 for 2.16, 0.25 for 2.18); 2.17 takes 0.24
#: and 2.19-2.21 take 0.25 (2.21 with 0.25 is this project's pinned desktop set).
TFP_FOR_TF = {(2, 15): "0.23", (2, 16): "0.24", (2, 17): "0.24", (2, 18): "0.25", (2, 19): "0.25",
              (2, 20): "0.25", (2, 21): "0.25"}
OLDEST_TF = min(TFP_FOR_TF)
NEWEST_TF = max(TFP_FOR_TF)


def tensorflow_version() -> str:
    """The installed TensorFlow's version, e.g. ``"2.19.0"``."""
    try:
        return metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        raise SystemExit("TensorFlow is not installed; Colab provides it (Runtime > Change runtime type).") from None


def _major_minor(version: str) -> tuple:
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"not a TensorFlow version: {version!r}")
    return int(match.group(1)), int(match.group(2))


def companion_requirements(tf_version: str) -> list:
    """pip requirements that fit beside TensorFlow ``tf_version``, TensorFlow pinned first.

    ``tf-keras`` is released with the same major.minor as TensorFlow. A TensorFlow newer than
    :data:`TFP_FOR_TF` knows takes the newest tensorflow-probability (at least the newest known).
    """
    major_minor = _major_minor(tf_version)
    if major_minor < OLDEST_TF:
        raise ValueError(f"TensorFlow {tf_version} is older than {OLDEST_TF[0]}.{OLDEST_TF[1]}, the oldest this "
                         "book supports; choose a newer Colab runtime")
    if major_minor in TFP_FOR_TF:
        tfp = f"tensorflow-probability=={TFP_FOR_TF[major_minor]}.*"
    else:
        tfp = f"tensorflow-probability>={TFP_FOR_TF[NEWEST_TF]}"
    base = tf_version.split("+")[0]  # a local version label (e.g. "+cuda") is not on PyPI
    return [f"tensorflow=={base}", tfp, f"tf-keras=={major_minor[0]}.{major_minor[1]}.*"]


# What the library needs that Colab may lack (the data files are fetched through pooch).
LIBRARY_EXTRAS = ["pooch>=1.9,<2"]


def install_commands(repo_dir, tf_version: str, python: str = sys.executable) -> list:
    """The pip commands, as argument lists: the companions, then the library from ``repo_dir``."""
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    return [pip + companion_requirements(tf_version) + LIBRARY_EXTRAS, pip + ["--no-deps", "-e", str(repo_dir)]]


def install(repo_dir, dry_run: bool = False) -> list:
    """Run (or with ``dry_run`` print) :func:`install_commands` for the installed TensorFlow."""
    commands = install_commands(repo_dir, tensorflow_version())
    for command in commands:
        print(("would run: " if dry_run else "running: ") + shlex.join(command), flush=True)
        if not dry_run:
            subprocess.run(command, check=True)
    return commands


# ----------------------------------------------------------------------------- the notebooks' cells


def repository(root=REPO) -> dict:
    """``_config.yml``'s repository url and branch, read without PyYAML (standard library only)."""
    text = (Path(root) / "_config.yml").read_text(encoding="utf-8")
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?|\n)*)", text, flags=re.M)
    if not block:
        raise ValueError("_config.yml has no repository section")
    values = dict(re.findall(r"^[ \t]+(\w+):[ \t]*\"?([^\"#\n]*?)\"?[ \t]*(?:#.*)?$", block.group(1), flags=re.M))
    url = values.get("url", "").rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"_config.yml repository.url must be https://github.com/<owner>/<name>, got {url!r}")
    return {"url": url, "branch": values.get("branch") or "main"}


def colab_url(notebook: str, root=REPO) -> str:
    """Colab's address of ``notebook`` (a path relative to the repository root)."""
    repo = repository(root)
    return f"https://colab.research.google.com/github/{repo['url'].split('github.com/', 1)[1]}/blob/{repo['branch']}/{notebook}"


def badge(notebook: str, root=REPO) -> str:
    """The Markdown "Open In Colab" badge of ``notebook``."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook, root)})"


def setup_cell(root=REPO) -> str:
    """Source of every chapter's Colab set-up cell."""
    url = repository(root)["url"]
    return f'''# Runs only in Google Colab (elsewhere it does nothing): clone the
# repository, install the library beside Colab's TensorFlow
# (scripts/colab_setup.py), and work from the clone's notebooks/ folder.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    REPO_URL = "{url}.git"
    REPO_DIR = os.environ.get("{REPO_DIR_ENV}", "{COLAB_REPO_DIR}")
    if not os.path.isdir(REPO_DIR):
        subprocess.run(
            ["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], check=True
        )
    setup_script = os.path.join(REPO_DIR, "scripts", "colab_setup.py")
    subprocess.run(
        [sys.executable, setup_script, "--repo-dir", REPO_DIR], check=True
    )
    sys.path.insert(0, REPO_DIR)
    os.chdir(os.path.join(REPO_DIR, "notebooks"))'''


def _lines(text: str) -> list:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


BADGE_PATTERN = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def is_setup_cell(cell: dict) -> bool:
    return cell["cell_type"] == "code" and "google.colab" in "".join(cell["source"])


def update_notebook(path: Path, root=REPO) -> bool:
    """Write the generated badge (first cell) and set-up cell (hidden) into ``path``; True if it changed."""
    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    notebook = path.resolve().relative_to(Path(root).resolve()).as_posix()
    first = nb["cells"][0]
    text = "".join(first["source"])
    if not BADGE_PATTERN.search(text):
        raise ValueError(f"{path}: its first cell has no Open In Colab badge")
    first["source"] = _lines(BADGE_PATTERN.sub(lambda _: badge(notebook, root), text, count=1))
    cells = [c for c in nb["cells"] if is_setup_cell(c)]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one Colab set-up cell, found {len(cells)}")
    cells[0]["source"] = _lines(setup_cell(root))
    tags = cells[0].setdefault("metadata", {}).setdefault("tags", [])
    if "hide-input" not in tags:
        tags.append("hide-input")
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new != raw:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo-dir", default=os.environ.get(REPO_DIR_ENV, str(REPO)),
                        help="the clone whose library is installed (default: this repository)")
    parser.add_argument("--dry-run", action="store_true", default=os.environ.get(DRY_RUN_ENV) == "1",
                        help=f"print the pip commands instead of running them (also {DRY_RUN_ENV}=1)")
    parser.add_argument("--write-cells", nargs="*", metavar="NOTEBOOK",
                        help="rewrite the Colab badge and set-up cell of these notebooks (default: notebooks/*.ipynb)")
    args = parser.parse_args(argv)
    if args.write_cells is not None:
        paths = args.write_cells or sorted((REPO / "notebooks").glob("*.ipynb"))
        for path in paths:
            if update_notebook(Path(path)):
                print(f"updated {path}")
        return 0
    install(args.repo_dir, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
