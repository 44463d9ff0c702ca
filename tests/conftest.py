"""Shared pytest set-up.

Data: the loaders read ``IWAE_DATA_DIR``. A relative value (CI sets ``../shared/data``) is
resolved against the repository root, so tests work from any working directory; when it
is unset and ``<repo>/../shared/data`` exists, that folder is used. Tests that need the
real files take the ``real_data_dir`` fixture, which skips them when no folder is found.
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
