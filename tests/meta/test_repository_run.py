"""This repository's own test run (conftest.py): the choices it makes for every test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

CONFTEST = Path(__file__).resolve().parents[2] / "conftest.py"


def _choose(request, **option):
    """conftest.pytest_cmdline_main on a config holding these options; the scheduler it leaves."""
    hook = next(p.pytest_cmdline_main for p in request.config.pluginmanager.get_plugins()
                if Path(getattr(p, "__file__", "") or "") == CONFTEST)
    config = SimpleNamespace(option=SimpleNamespace(**{"distload": False, **option}))
    hook(config)
    return config.option.dist


def test_under_n_workers_the_run_steals_work_unless_told_otherwise(request):
    """`-n N` without `--dist` runs under xdist's worksteal scheduler; an explicit `--dist` (or `-d`), or no
    workers, is left alone."""
    assert _choose(request, numprocesses=2, dist="no") == "worksteal"
    assert _choose(request, numprocesses="auto", dist="no") == "worksteal"
    assert _choose(request, numprocesses=2, dist="load") == "load"
    assert _choose(request, numprocesses=2, dist="loadscope") == "loadscope"
    assert _choose(request, numprocesses=2, dist="no", distload=True) == "no"  # xdist's -d: load, its own way
    assert _choose(request, numprocesses=None, dist="no") == "no"
    assert _choose(request, numprocesses=0, dist="no") == "no"


def test_a_run_with_n_workers_schedules_by_stealing_work():
    """The hook takes effect where it matters, in a real `-n 2` run of this repository (before xdist's own
    hook turns "no" into "load"): xdist names its scheduler under -v."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider",
                        f"{__file__}::test_under_n_workers_the_run_steals_work_unless_told_otherwise"],
                       cwd=CONFTEST.parent, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "scheduling tests via WorkStealingScheduling" in r.stdout, r.stdout[-2000:]
