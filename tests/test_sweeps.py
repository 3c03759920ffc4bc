"""Exhaustive sweeps in the test command: every float16 and bfloat16 input of sigmoid, logsigmoid and softplus, value
and derivative, for every subject (lossproof/sweep.py), against the certified oracle (oracles/univariate.py). Each
row must reach the subject's required rung (stable; accurate for our NumPy functions) on every element no
documented deviation explains, and goes into the run's results file (its ``sweeps``) and so into the report.

A format a subject lacks (NumPy's bfloat16, SciPy's float16 computed in float32) is skipped with that reason.
About 0.1 s per row on one core (65,536 inputs, two quantities).
"""

from __future__ import annotations

import os

import pytest

from lossproof import sweep
from lossproof.verdicts import RANK
from reports import atomic, schema

ROWS = [(f, s, fmt) for s in sweep.SUBJECTS for fmt in ("float16", "bfloat16") for f in sweep.FUNCTIONS]


def _write_part(config, row):
    """The row as a results part the run's recorder merges into the results file (lossproof/recorder.py)."""
    from lossproof.plugin import recorder_of

    try:
        rec = recorder_of(config)
    except KeyError:  # pragma: no cover - the plugin is loaded through its entry point
        return
    name = f"{rec.run_id}-sweep-{row['function']}-{row['subject']}-{row['format']}.json"
    atomic.write_json(os.path.join(rec.parts_dir(), name), schema.document([], [], [row]))


@pytest.mark.parametrize("function,subject,fmt", ROWS, ids=["-".join(r) for r in ROWS])
def test_every_input(function, subject, fmt, request):
    s = sweep.SUBJECTS[subject]
    if fmt not in s.formats:
        pytest.skip(f"{subject} has no {fmt}: {dict(s.why_not).get(fmt)}")
    row = sweep.sweep_range(function, subject, fmt, 0, sweep.size(fmt))
    if row.get("reason"):
        pytest.skip(f"{subject} {function} in {fmt} is not supported: {row['reason']}")
    schema.check_sweep(row, "the sweep row")
    _write_part(request.config, row)
    assert set(row["quantities"]) == ({"value"} if subject == "scipy" else {"value", "grad"})
    for kind, q in row["quantities"].items():
        assert q["elements"] == sweep.size(fmt)
        assert sum(q["verdicts"].values()) == q["elements"]
    assert RANK[row["verdict"]] >= RANK[row["required"]], "\n".join(
        [f"{subject} {function} {fmt}: {row['verdict']}, required {row['required']}"]
        + [f"{k}: {w}" for k, q in row["quantities"].items() for w in q["witnesses"]])
