"""How a battery test ends once its search has passed: measured enough, or said why not."""

from __future__ import annotations

import pytest


def conclude(run, case, notice):
    """A passing run that measured too little is never a silent pass. A user's function ends inconclusive (a skip
    whose reason starts "inconclusive:"; exit 3 of ``lossproof check``), even where it raised on every example (a
    format it does not support is left out with --dtype, not passed); a library's cell that measured nothing is
    skipped as not supported, and one that measured too little says so in the run's notices."""
    why = run.inconclusive()
    if case.is_user:
        if why:
            pytest.skip(why)
        return
    if run.state["measured"] == 0 and run.state["unsupported"]:
        pytest.skip(f"not supported: {run.state['unsupported']}")
    if why:
        notice(f"{case.id} ({run.prop}): {why}")
