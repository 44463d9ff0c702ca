"""Atomic files for run directories: checkpoints, weights and JSON records.

Every write goes to a temporary file in the same folder, is flushed to disk, and then
renamed over the target, so a run killed at any moment (even with kill -9) leaves either
the old file or the new one, never a torn one.
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _atomic_write(path: Path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_json(path, obj):
    """Write ``obj`` as indented JSON, atomically."""
    _atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()))


def load_json(path):
    with open(path) as f:
        return json.load(f)


def save_arrays(path, arrays: dict):
    """Write a dict name -> array as an uncompressed ``.npz``, atomically."""
    _atomic_write(path, lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}))


def load_arrays(path) -> dict:
    """Read a ``.npz`` written by :func:`save_arrays` into a dict of arrays."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def ensure_writable_dir(path) -> Path:
    """Create the folder if needed and check that a file can be written in it.

    Raises ValueError with the reason (a person can act on it) if not.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"the output directory {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"cannot write to the output directory {path}: {err.strerror or err}") from err
    return path
