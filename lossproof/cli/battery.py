"""Running the battery (lossproof/battery, shipped with lossproof) under pytest from the command line, isolated from
the configuration of whatever project it is run in: its own ini file, no cache folder, the plugin's options."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lossproof import profiles

from .errors import USAGE, UsageError

BATTERY = Path(__file__).resolve().parent.parent / "battery"
#: the battery's own pytest configuration (a user's pyproject.toml or pytest.ini never applies to it)
INI = BATTERY / "pytest.ini"


def run(modules, profile: str, extra: list, plugins: list | None = None) -> int:
    """pytest on the battery's ``modules`` under ``profile``: its exit status as ours (0 every gating property holds,
    1 one failed), 2 with one line when the battery could not run."""
    try:
        profiles.get(profile)
    except ValueError as e:
        raise UsageError(str(e)) from None
    paths = [str(BATTERY / m) for m in modules]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise UsageError(f"the battery is not installed completely: {missing[0]} is missing (reinstall lossproof)")
    code = pytest.main([*paths, "-q", "-c", str(INI), "--rootdir", os.getcwd(), "-p", "no:cacheprovider",
                        "--lossproof-profile", profile, *extra], plugins=plugins or [])
    if code in (0, 1):
        return int(code)
    print(f"lossproof: error: the battery did not run (pytest exit status {int(code)})", file=sys.stderr)
    return USAGE
