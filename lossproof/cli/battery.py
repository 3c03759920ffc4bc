"""Running the battery (lossproof/battery, shipped with lossproof) under pytest from the command line, isolated from
the configuration of whatever project it is run in: its own ini file, no cache folder, the plugin's options."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lossproof import profiles

from .errors import USAGE, UsageError

BATTERY = Path(__file__).resolve().parent.parent / "battery"
#: the battery's own pytest configuration (a user's pyproject.toml or pytest.ini never applies to it)
INI = BATTERY / "pytest.ini"
#: the library subjects (lossproof.cases.LIBRARIES, spelled out: importing it loads torch; tests/meta/
#: test_corpus_build.py checks they agree), what ``lossproof verify`` and ``lossproof report`` run
LIBRARY_SUBJECTS = "torch,numpy,scipy,jax,optax-safe"


def _check_configuration(extra: list) -> None:
    """What the plugin will read, read first: ``[tool.lossproof]`` of the nearest pyproject.toml (the run's root is
    the working directory), its accept entries and its subjects, so that a bad one is our one line and exit 2, not
    pytest's usage error of several lines (lossproof.plugin reads them again, the same way)."""
    from lossproof import accept as accepting
    from lossproof import config as configuration
    from subjects.user import SubjectError

    try:
        cfg = configuration.load(search_from=os.getcwd())
        if cfg.accept:
            accepting.parse(cfg.accept, f"{cfg.path}: [tool.lossproof]")
        framework = extra[extra.index("--lossproof-framework") + 1] if "--lossproof-framework" in extra else None
        for subject in [] if "--lossproof-skip-configured-subjects" in extra else cfg.subjects:
            try:
                subject.load(framework or cfg.framework)
            except SubjectError as e:
                raise UsageError(str(e)) from None
    except (configuration.ConfigError, accepting.AcceptError) as e:
        raise UsageError(str(e)) from None


def workers(value: str) -> str:
    """``--workers``: auto, logical, or a count of at least 0 (0: no workers), checked before pytest-xdist reads
    it (its own error is a usage dump of several lines)."""
    if value in ("auto", "logical") or (value.isdigit() and value.isascii()):
        return value
    raise UsageError(f"--workers must be auto, logical or a number of workers, not {value!r}")


def run(modules, profile: str, extra: list, plugins: list | None = None) -> int:
    """pytest on the battery's ``modules`` under ``profile``: its exit status as ours (0 every gating property holds,
    1 one failed), 2 with one line when the battery could not run."""
    try:
        profiles.get(profile)
    except ValueError as e:
        raise UsageError(str(e)) from None
    _check_configuration(extra)
    import pytest  # here, not at the top: a command refused before its run never pays for pytest's import

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
