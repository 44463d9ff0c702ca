"""The two profiles every chapter runs in, chosen by the environment.

    smoke   (``IWAE_SMOKE=1`` or ``IWAE_PROFILE=smoke``): every run shrunk to seconds
            (:func:`iwae_lib.chapters.catalog.smoke_version`); used by the tests and in Colab
            for a quick look. It never reads or writes ``results/``.
    full    (the default): the recorded runs in ``results/`` are loaded.
"""

from __future__ import annotations

import os

PROFILES = ("smoke", "full")


def profile() -> str:
    """``"smoke"`` when ``IWAE_SMOKE=1`` or ``IWAE_PROFILE=smoke``, else ``"full"``."""
    chosen = os.environ.get("IWAE_PROFILE", "").strip().lower()
    if chosen and chosen not in PROFILES:
        raise ValueError(f"IWAE_PROFILE must be one of {', '.join(PROFILES)}, got {chosen!r}")
    if os.environ.get("IWAE_SMOKE", "").strip().lower() in ("1", "true", "yes") or chosen == "smoke":
        return "smoke"
    return "full"


def is_smoke() -> bool:
    return profile() == "smoke"
