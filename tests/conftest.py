"""Shared pytest set-up.

Data: the loaders read ``IWAE_DATA_DIR``. A relative value (CI sets ``../shared/data``) is
resolved against the repository root, so tests work from any working directory; when it
is unset and ``<repo>/../shared/data`` exists, that folder is used. Tests that need the
real files take the ``real_data_dir`` fixture, which skips them when no folder is found.

Layout: one folder per thing tested, and each test carries its folder's name as a marker
(``pytest -m method``): ``method/`` the maths and training of the paper's method,
``data/`` the data files and loaders, ``runs/`` the command line, run bookkeeping and the
recorded results, ``book/`` the chapters' helpers and the book build. Tests that take more
than a few seconds (real training runs, the book build) are marked ``slow``
(``pytest -m "not slow"`` leaves them out).
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _normalise_data_dir_env():
    value = os.environ.get("IWAE_DATA_DIR")
    if value:
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = REPO_ROOT / path
        os.environ["IWAE_DATA_DIR"] = str(path.resolve())
        return
    default = REPO_ROOT.parent / "shared" / "data"
    if default.is_dir():
        os.environ["IWAE_DATA_DIR"] = str(default.resolve())


_normalise_data_dir_env()

AREAS = ("method", "data", "runs", "book")


def pytest_collection_modifyitems(items):
    """Mark each test under tests/ with the name of its folder (one of AREAS)."""
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if tests_dir not in path.parents:
            continue  # the notebooks (nbval)
        if path.parent.parent != tests_dir or path.parent.name not in AREAS:
            raise pytest.UsageError(f"{path}: put the test in one of the folders tests/{{{','.join(AREAS)}}}")
        item.add_marker(path.parent.name)


@pytest.fixture(scope="session")
def real_data_dir():
    """Absolute ``Path`` of the folder with the real data files, or skip the test."""
    value = os.environ.get("IWAE_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip(
            "no data folder: set IWAE_DATA_DIR to the folder holding the MNIST files "
            "(e.g. ../shared/data relative to the repository root)"
        )
    return Path(value)
