"""Build the Jupyter Book in one profile, never mixing the profiles' executed outputs.

    python -m iwae_lib.chapters.build            # the profile of the environment (IWAE_SMOKE=1: smoke)

Each profile has its own folder, ``_build/<profile>/``: ``html/`` (the site), ``.doctrees/``
and ``jupyter_cache/<key>/`` (executed notebooks). The key is a hash of everything the
outputs depend on besides a notebook's own code (which the cache already compares): the
library ``iwae_lib/``, ``requirements.txt`` and, in the full profile, the recorded runs in
``results/`` (or ``IWAE_RESULTS_DIR``). A change to any of them starts a new cache, so every
chapter runs again; the caches of older keys are deleted.

The full profile first checks the book's list of runs (:mod:`iwae_lib.chapters.catalog`): if a
run is not recorded, the build stops with the commands that record it, and nothing is
executed (the book build never trains).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path

from iwae_lib import chapters
from iwae_lib.checkpoints import LOCK_FILE

HASHED_SUFFIXES_SKIPPED = (".pyc",)
HASHED_NAMES_SKIPPED = (LOCK_FILE,)  # a training process's pid (iwae_lib.checkpoints.exclusive_run)


def tree_key(paths) -> str:
    """A short sha256 over the relative names and contents of every file under ``paths``
    (files or folders; missing ones count as empty), skipping ``__pycache__`` and run locks."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for file in files:
            if "__pycache__" in file.parts or file.suffix in HASHED_SUFFIXES_SKIPPED or file.name in HASHED_NAMES_SKIPPED:
                continue
            digest.update(str(file.relative_to(root.parent)).encode() + b"\0")
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def output_dir(source: Path, profile: str) -> Path:
    """``<source>/_build/<profile>``: everything one profile's build writes."""
    return Path(source) / "_build" / profile


def cache_key(source: Path, profile: str) -> str:
    """The key of a profile's notebook cache: the library and requirements, and for the full
    profile the recorded runs (the smoke profile never reads them)."""
    trees = [chapters.repo_root() / "iwae_lib", Path(source) / "requirements.txt"]
    return tree_key(trees + ([chapters.results_dir()] if profile == "full" else []))


def check_runs(runs: dict | None = None) -> str | None:
    """The refusal message of a full build while runs are missing (None when all are recorded)."""
    import iwae_lib.chapters.catalog as catalog
    from iwae_lib.bookkeeping import pace, status

    runs = catalog.book_runs() if runs is None else runs
    paces = pace.measured(chapters.results_dir())
    return status.check_message(status.statuses(runs, chapters.results_dir(), paces), paces)


def build(source, profile: str | None = None, runs: dict | None = None) -> Path:
    """Build the book in ``source`` for ``profile`` (default: the environment's); returns the html folder.

    runs: the list of runs a full build needs (default: the book's catalog). Raises
    RuntimeError with the message of :func:`check_runs` when one is not recorded, and
    RuntimeError when Sphinx fails.
    """
    from jupyter_book.sphinx import build_sphinx

    source = Path(source).resolve()
    profile = profile or chapters.profile()
    if profile not in chapters.PROFILES:
        raise ValueError(f"profile must be one of {', '.join(chapters.PROFILES)}, got {profile!r}")
    os.environ["IWAE_PROFILE"] = profile  # the notebook kernels inherit the profile
    os.environ[chapters.SITE_BUILD_ENV] = "1"  # ... and know that they make a static site
    if profile == "full":
        os.environ.pop("IWAE_SMOKE", None)
    else:
        os.environ["IWAE_SMOKE"] = "1"
    if profile == "full":
        message = check_runs(runs)
        if message:
            raise RuntimeError(message)
    out = output_dir(source, profile)
    key = cache_key(source, profile)
    caches = out / "jupyter_cache"
    if caches.is_dir():
        for old in caches.iterdir():
            if old.name != key:
                shutil.rmtree(old, ignore_errors=True)
    overrides = {"external_toc_path": (source / "_toc.yml").as_posix(), "nitpicky": True, "latex_individualpages": False,
                 "nb_execution_cache_path": str(caches / key)}
    status = build_sphinx(source, out / "html", doctreedir=out / ".doctrees", noconfig=True,
                          path_config=str(source / "_config.yml"), confoverrides=overrides, builder="html",
                          warningiserror=True, keep_going=True, freshenv=True)
    if status:
        raise RuntimeError(f"the book build failed (Sphinx exit status {status}); see the messages above")
    return out / "html"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iwae_lib.chapters.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", default=None, help="the book's folder (default: the repository)")
    parser.add_argument("--profile", choices=chapters.PROFILES, default=None,
                        help="default: smoke when IWAE_SMOKE=1 or IWAE_PROFILE=smoke, else full")
    args = parser.parse_args(argv)
    try:
        html = build(args.source or chapters.repo_root(), args.profile)
    except RuntimeError as err:
        print(f"\n{err}", file=sys.stderr)
        return 1
    print(f"The {args.profile or chapters.profile()} book is in {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
