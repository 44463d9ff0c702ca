"""What every command shares: exit statuses, one-line usage errors, reading run files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from iwae_lib import checkpoints

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input or configuration: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error becomes a UsageError (one line, no usage dump)."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def read_json(path: Path, what: str) -> dict:
    try:
        with open(path) as f:
            value = json.load(f)
    except OSError as err:
        raise UsageError(f"cannot read {what} {path}: {err.strerror or err}") from err
    except json.JSONDecodeError as err:
        raise UsageError(f"{what} {path} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise UsageError(f"{what} {path} must hold a JSON object")
    return value


def check_writable(out: Path):
    """Create ``out`` if needed and check a file can be written there (UsageError if not)."""
    try:
        checkpoints.ensure_writable_dir(out)
    except ValueError as err:
        raise UsageError(str(err)) from err
