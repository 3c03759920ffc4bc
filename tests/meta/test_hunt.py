"""``lossproof hunt`` and ``lossproof detect`` as commands: the hunt finds the failure a naive implementation has and
none in a careful one, the worst-known table merges and is written atomically, and bad input exits 2 with one line
(no traceback).

The hunt is budgeted in seconds (``--budget``); here its clock is a fake one (``clock``) that moves a fixed step at
every reading, so a budget of S seconds buys the same S / STEP readings, the same loop iterations and the same
evaluations on any machine under any load: the tests assert on what the hunt found and how many inputs it
evaluated, never on seconds. What a real budget buys is measured by benchmarks/budget_speed.py."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

from lossproof import cli, detect, hunt, zoo
from reports.reproducers import compact_input

#: fake seconds per clock reading: the hunt reads its clock once per Hypothesis example and once per move of the
#: encoding search, so a 3 s budget is 300 readings, 150 for each phase
STEP = 0.01


class FakeClock:
    """``time`` for lossproof.hunt: each ``monotonic`` reading moves it on by ``STEP`` fake seconds."""

    def __init__(self):
        self.now = 0.0
        self.readings = 0

    def monotonic(self):
        self.readings += 1
        self.now += STEP
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(hunt, "time", c)
    return c


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _case(name):
    return detect.case_for(zoo.by_name(name))


def test_hunt_finds_the_naive_softplus_overflow_and_nothing_in_the_careful_one(clock):
    naive = hunt.hunt(_case("softplus_log1p_exp"), budget=3.0, top=3)
    assert naive["worst"][0]["element_verdict"] == "broken", naive["worst"][0]
    before = clock.readings
    careful = hunt.hunt(_case("careful_softplus"), budget=3.0, top=3)
    # the budget is 3.0 / STEP = 300 readings (a few more: the phases' starts and ends read it too); a Hypothesis
    # example evaluates at most once per reading, a move of the encoding search at most twice (both signs)
    readings = clock.readings - before
    assert 300 <= readings <= 310, readings
    assert 20 < careful["evaluations"] <= 2 * readings, (careful["evaluations"], readings)
    assert careful["worst"][0]["element_verdict"] in ("stable", "accurate", "correctly_rounded"), careful["worst"][0]


def test_encoding_search_climbs_to_the_overflow_threshold(clock):
    """From a harmless start (x = 80 in float32, where exp(80) is finite) the moves over encodings alone reach an
    input past log(max float32) = 88.72, where log(1 + exp(x)) overflows."""
    h = hunt.Hunter(_case("softplus_log1p_exp"))
    assert h.evaluate({"input": [80.0]}) is not None
    hunt.local_phase(h, seconds=5.0)
    w = h.worst(1)[0]
    assert w["element"].verdict == "broken" and w["kwargs"]["input"][0] > 88.72, w["kwargs"]


def test_record_merges_and_keeps_the_worse(tmp_path):
    path = str(tmp_path / "worst.json")
    r = hunt.hunt(_case("softplus_log1p_exp"), budget=2.0, top=2)
    hunt.record(path, r)
    better = dict(r, worst=[dict(r["worst"][0], element_verdict="accurate", ulp=0.5, bits=1.0)])
    hunt.record(path, better)  # not worse: the old entry stays
    with open(path) as fh:
        data = json.load(fh)
    assert len(data["entries"]) == 1 and data["entries"][0]["worst"][0]["element_verdict"] == "broken"
    assert os.listdir(tmp_path) == ["worst.json"]  # no temporary file left behind


@pytest.mark.parametrize("argv,message", [
    (["hunt", "nosuch", "torch"], "unknown loss 'nosuch'"),
    (["hunt", "softplus", "torch", "--format", "float8"], "unknown format 'float8'"),
    (["hunt", "softplus", "torch", "--budget", "x"], "invalid float value"),
    (["hunt", "softplus", "torch", "--budget", "-1"], "--budget must be a positive"),
    (["hunt", "softplus", "examples/nofile.py:f"], "no such file"),
    (["hunt", "softplus", "torch", "--record", "/nonexistent/dir/w.json"], "no such folder"),
    (["detect", "--members", "nosuch"], "unknown zoo member 'nosuch'"),
    (["detect", "--json", "/nonexistent/dir/d.json"], "no such folder"),
])
def test_usage_errors_exit_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and message in err and "Traceback" not in err, err


def test_detect_writes_its_table_as_json(tmp_path, capsys):
    """Two members and a control: the JSON holds a record each, and the kill rate and false alarms."""
    path = str(tmp_path / "detect.json")
    code = cli.main(["detect", "--members", "bce_clip_eps,log_softmax_no_shift,scipy_expit", "--json", path])
    assert code == 0, capsys.readouterr().out
    with open(path) as fh:
        data = json.load(fh)
    recs = {r["name"]: r for r in data["records"]}
    assert recs["bce_clip_eps"]["lossproof"]["caught"] and recs["log_softmax_no_shift"]["lossproof"]["caught"]
    assert not recs["scipy_expit"]["lossproof"]["caught"] and not recs["scipy_expit"]["usual"]["caught"]
    assert data["summary"]["lossproof"]["kill_rate"] == 1.0 and data["summary"]["lossproof"]["false_alarms"] == 0
    assert os.listdir(tmp_path) == ["detect.json"]
    caught = recs["bce_clip_eps"]["lossproof"]
    assert caught["minimal_text"] == compact_input(caught["minimal"])


def test_minimal_inputs_are_written_compactly_and_exactly():
    """Runs of equal items are written once with their count (a 258-class row stays one line); floats keep their
    exact repr, -0.0 stays apart from 0.0, non-finite values are words."""
    text = compact_input({"input": [[-1.0] * 257 + [1.0]], "target": [257], "reduction": "mean"})
    assert text == '{input: [[-1.0 x257, 1.0]], target: [257], reduction: "mean"}'
    assert compact_input([0.0, -0.0, -0.0, -0.0, 0.1, 0.1, "-inf"]) == "[0.0, -0.0 x3, 0.1, 0.1, -inf]"
    assert compact_input([1e-45, 3.4028234663852886e+38]) == "[1e-45, 3.4028234663852886e+38]"
