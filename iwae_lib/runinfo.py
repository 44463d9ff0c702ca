"""What a recorded result needs besides numbers: git revision, library versions, hardware."""

import os
import platform
import subprocess
import sys
from pathlib import Path


def git_revision(path=None) -> str:
    """The git commit of the checkout holding this library (``+dirty`` if modified), or 'unknown'."""
    where = Path(path or Path(__file__).resolve().parent)
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# environment variables that change TensorFlow's kernels or threads, hence a run's speed
SPEED_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


def speed_settings() -> dict:
    """Those of ``SPEED_VARIABLES`` that are set, name -> value (empty: TensorFlow's defaults)."""
    return {name: os.environ[name] for name in SPEED_VARIABLES if name in os.environ}


def environment() -> dict:
    """A JSON-ready description of the software and hardware a run used."""
    import numpy
    import tensorflow as tf
    import tensorflow_probability as tfp

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        "git_revision": git_revision(),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "tensorflow_probability": tfp.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "speed_settings": speed_settings(),
    }
