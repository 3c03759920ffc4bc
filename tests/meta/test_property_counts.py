"""No vacuous property (issue 14 item 2): every property counts the examples drawn, applied and that reached its
comparison with the exact result; a cell under its share (lossproof.profiles.MIN_REACHED_SHARE) is inconclusive
(``lossproof check``: exit 3) or fails (an identity of the battery), and the pytest summary prints the counts."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from lossproof import cases, judge, profiles, search
from lossproof.battery.outcome import Reach, conclude
from lossproof.cases import NotSupported

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _counting(loss, fmt, refuse):
    """Our NumPy ``loss`` in ``fmt`` whose call refuses (NotSupported) the inputs ``refuse`` picks; the distinct
    calls it answered and refused, counted apart from the search."""
    base = next(c for c in cases.numpy_cases() if c.loss == loss and c.fmt == fmt)
    calls: dict = {"ok": set(), "refused": set()}

    def call(kw):
        if refuse(kw):
            calls["refused"].add(repr(kw))
            raise NotSupported(f"refused {kw['input']!r}")
        calls["ok"].add(repr(kw))
        return base.call(kw)

    return dataclasses.replace(base, call=call), calls


def _first(x):
    while isinstance(x, list):
        x = x[0]
    return x


@pytest.mark.parametrize("prop", ["agreement", "no_overflow"])
def test_the_counts_are_the_calls_made(prop):
    case, calls = _counting("sigmoid", "float64", lambda kw: _first(kw["input"]) < 0)
    with profiles.use("ci"):
        run = search.search(prop, case, examples=30, edges=False)
        calls["ok"].clear(), calls["refused"].clear()  # the capability probes are not the search's
        run.run()
    c = run.counts()
    assert c["reached"] == run.state["measured"] == len(calls["ok"]) > 0
    assert c["applied"] == len(calls["ok"]) + len(calls["refused"])
    assert c["drawn"] >= c["applied"] and len(calls["refused"]) > 0
    if prop == "no_overflow":  # the search draws finite inputs only: every draw applies
        assert c["drawn"] == c["applied"]


def test_a_cell_whose_draws_mostly_do_not_apply_is_inconclusive(monkeypatch):
    """No overflow applying to one draw in four: the search passes, the cell is inconclusive with its counts."""
    real = judge.overflow_call
    seen: list = []

    def rarely(case, kw, strict=False):
        seen.append(1)
        return real(case, kw, strict) if len(seen) % 4 == 0 else None

    monkeypatch.setattr(judge, "overflow_call", rarely)
    case = next(c for c in cases.numpy_cases() if c.loss == "sigmoid" and c.fmt == "float64")
    with profiles.use("ci"):
        run = search.search("no_overflow", case, examples=40, edges=False)
        run.run()
        why = run.inconclusive()
    c = run.counts()
    assert 0 < c["reached"] < profiles.min_reached_share("no_overflow") * c["drawn"]
    assert why is not None and "\n" not in why
    assert f"{c['reached']} of the {c['drawn']} examples drawn reached the comparison" in why
    notices: list = []
    with pytest.raises(pytest.fail.Exception) as e:  # a library's cell of the battery fails, in one line
        conclude(run, case, notices.append)
    assert str(e.value) == f"{case.id} (no_overflow): {why.removeprefix('inconclusive: ')}" and not notices
    user = dataclasses.replace(case, subject="user:f")
    with pytest.raises(pytest.skip.Exception, match="^inconclusive: "):  # a user's: inconclusive (check: exit 3)
        conclude(run, user, notices.append)


def test_a_cell_that_reaches_enough_is_conclusive():
    case = next(c for c in cases.numpy_cases() if c.loss == "sigmoid" and c.fmt == "float64")
    with profiles.use("ci"):
        run = search.search("agreement", case, examples=30, edges=False)
        run.run()
        assert run.inconclusive() is None
    c = run.counts()
    assert c["reached"] >= profiles.min_reached_share("agreement") * c["drawn"]


def test_an_identity_under_its_share_fails_in_one_line():
    reach = Reach("KL = CE - H", "fake-float32-cpu")
    for i in range(4):
        reach.drawn({"input": [float(i)]})
        reach.mark("applied")
        if i == 0:
            reach.mark("reached")
        else:
            reach.refused(NotSupported("no log_softmax here\nsecond line"))
    reach.drawn({"input": [0.0]})  # a replay: counted once, and keeps how far it went
    recorded: list = []
    with pytest.raises(pytest.fail.Exception) as e:
        reach.conclude(lambda k, v: recorded.append((k, v)))
    assert recorded == [("lossproof_reach", ("KL = CE - H", "fake-float32-cpu", 4, 4, 1, 0.5))]
    assert str(e.value) == ("fake-float32-cpu (KL = CE - H): 1 of the 4 examples drawn reached the comparison "
                            "(at least 50% needed; 4 applied; first refusal: no log_softmax here)")


def test_an_identity_that_reaches_enough_passes():
    reach = Reach("KL = CE - H", "fake")
    for i in range(3):
        reach.drawn(i)
        reach.mark("applied")
        reach.mark("reached")
    reach.drawn(3)
    reach.conclude(lambda k, v: None)  # 3 of 4: no failure


def test_scipy_kl_div_is_called_as_it_takes_and_its_other_values_are_not_supported():
    """SciPy's rel_entr takes reduction "none" only and no log-space target: every draw is called that way, and
    the other values are reported as not supported (was: 64 of 105 examples 'not supported' inside a pass)."""
    pytest.importorskip("scipy")
    case = next(c for c in cases.scipy_cases() if c.loss == "kl_div" and c.fmt == "float32")
    missing = cases.unsupported(case)
    assert {"reduction other than 'none'", "log_target other than False"} <= set(missing)
    kw = {"input": [-1.0, -2.0], "target": [0.5, 0.25], "reduction": "batchmean"}
    assert cases.restrict(case, kw)["reduction"] == "none"
    assert cases.restrict(case, {**kw, "log_target": True}) is None
    with profiles.use("ci"):
        run = search.search("agreement", case, examples=25, edges=False)
        run.run()
    c = run.counts()
    assert run.state.get("raised", 0) == 0 and c["reached"] == c["applied"] == c["drawn"] > 0


def test_the_summary_prints_the_counts_per_property(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "lossproof.battery", "-q", "-p", "no:randomly",
                        "-p", "no:cacheprovider", "-c", os.path.join(ROOT, "lossproof", "battery", "pytest.ini"),
                        "--rootdir", str(tmp_path), "-k", "test_no_overflow or test_special_value",
                        "--lossproof-only-subjects", "numpy", "--lossproof-losses", "sigmoid",
                        "--lossproof-formats", "float64", "--lossproof-profile", "dev",
                        "--lossproof-results", str(tmp_path / "r.json")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    out = r.stdout
    assert "lossproof property reach" in out
    (line,) = [x for x in out.splitlines() if x.startswith("no_overflow: reached ")]
    assert " drawn (" in line and "applied" in line and "1 cells" in line
    assert any(x.startswith("special values: reached ") for x in out.splitlines())
