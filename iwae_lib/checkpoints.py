"""Atomic files for run directories: checkpoints, weights and JSON records; one trainer per run.

Every write goes to a temporary file in the same folder, is flushed to disk, and then
renamed over the target, so a run killed at any moment (even with kill -9) leaves either
the old file or the new one, never a torn one. A training process holds its run directory
with a lock (:func:`exclusive_run`), so that a second process started on the same run
stops with a clear error instead of training it too.
"""

import contextlib
import json
import os
import tempfile
import zipfile
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


class DamagedFile(RuntimeError):
    """A run file that exists but cannot be read back. Files are written atomically, so it was
    damaged afterwards (a copy or transfer cut short, a disk). ``path`` and ``reason`` are kept."""

    def __init__(self, path, reason):
        super().__init__(f"{path} is damaged and was not used ({reason})")
        self.path, self.reason = Path(path), reason


def load_arrays(path) -> dict:
    """Read a ``.npz`` written by :func:`save_arrays` into a dict of arrays.

    Raises DamagedFile, naming the file, when it is not a readable ``.npz`` (truncated,
    overwritten); OSError when it cannot be opened at all (missing, no permission).
    """
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, ValueError) as err:
        raise DamagedFile(path, f"{type(err).__name__}: {err}") from err


def read_counters(path) -> dict | None:
    """The counters (epoch, step, learning curve, training sessions, ...) of the checkpoint
    at ``path``, read without loading its arrays; None when it is missing or damaged."""
    try:
        with np.load(Path(path)) as archive:
            return json.loads(str(archive["counters_json"]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


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


LOCK_FILE = "train.lock"  # holds the pid of the process training the run; the lock dies with it


class RunInUse(RuntimeError):
    """Another process is training the run directory."""


def training_process(run_dir) -> str | None:
    """The pid (as its lock file says) of the process training ``run_dir`` now, else None.

    Asks for a shared lock without waiting: it is refused exactly while a trainer holds
    :func:`exclusive_run`. None where ``fcntl`` is missing (Windows) or nothing was trained.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        return None
    path = Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return lock.read().strip() or "unknown"
    return None  # closing the file released the shared lock


@contextlib.contextmanager
def exclusive_run(run_dir):
    """Hold ``run_dir`` for this process while the block runs (an advisory ``flock`` on
    ``run_dir/train.lock``, released by the kernel when the process ends, however it ends).

    Raises:
        RunInUse: naming the process that holds it. Where ``fcntl`` is missing (Windows)
            nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    run_dir = Path(run_dir)
    with open(run_dir / LOCK_FILE, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise RunInUse(f"{run_dir} is being trained by another process (pid {holder}); wait for it to end, "
                           f"or stop it with kill -INT {holder} (it writes a checkpoint first), "
                           "then continue with --resume") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield
