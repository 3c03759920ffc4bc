"""Meta-tests of reports/: the results schema, merging, the regression gate (in process and as the command), the
HTML report (offline, the summary table, reproducers that reproduce) and the ULP rounding of the tables."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import math
import os
import random
import re
import shlex
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from oracles import codec
from reports import cells as C
from reports import gate as G
from reports import html, page, reproducers, schema
from tests.meta import forked_command

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("report_speed", ROOT / "benchmarks" / "report_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BENCH = _bench()


def _doc(n=400, seed=1, **kw):
    return BENCH.synthetic_doc(n, seed=seed, **kw)


def _rec(case="c1", subject="torch", loss="cross_entropy", fmt="float32", verdict="accurate", ulp=1.0,
         elements=10, cr=8, gating=True, deviation=None, params=None, source="corpus"):
    return {"run": "r1", "source": source, "case_id": case, "property": "corpus", "subject": subject, "loss": loss,
            "device": "cpu", "format": fmt, "params": params if params is not None else {}, "regime": None,
            "elements": elements, "max_ulp": ulp, "mean_bits": 0.1, "correctly_rounded": cr,
            "verdicts": {verdict: 1}, "verdict": verdict, "reason": None, "gating": gating, "deviation": deviation,
            "worst": None, "oracle_precision": 64}


def _results(*records, run="r1"):
    return schema.document([{"id": run, "command": "pytest", "profile": "ci", "started": "2026-01-01T00:00:00+00:00",
                             "environment": {}}], list(records))


def _run(*args, cwd=None):
    """The command line in a process of its own (``forked_command``: without paying the interpreter's imports)."""
    return forked_command.run(list(args), cwd=cwd or ROOT, timeout=120)


def _write(path, doc):
    schema.write_atomic(str(path), doc)
    return str(path)


# ------------------------------------------------------------------------------------------------------------
# schema and merge


def test_results_round_trip_through_an_atomic_write(tmp_path):
    doc = _doc(50)
    doc["records"][0]["max_ulp"] = math.inf
    p = _write(tmp_path / "r.json", doc)
    back = schema.load(p)
    assert back == doc
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")] == []
    for x in (0.1, -0.0, 5e-324, 1.7976931348623157e308, math.inf, -math.inf):
        assert codec.unhex(codec.hexf(x)) == x and math.copysign(1, codec.unhex(codec.hexf(x))) == \
            math.copysign(1, x)
    assert math.isnan(codec.unhex(codec.hexf(math.nan)))


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), ("{", "not valid JSON"), ('{"schema": "other"}', "not a lossproof results file"),
    ('{"schema": "lossproof-results", "version": 99, "runs": [], "records": []}', "schema version 99"),
])
def test_bad_results_files_are_one_clear_error(tmp_path, content, message):
    p = tmp_path / "r.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(schema.ResultsError, match=message):
        schema.load(str(p))


def test_merge_keeps_every_record_and_each_run_once(tmp_path):
    a, b = _results(_rec("a"), run="r1"), _results(_rec("b"), _rec("c"), run="r2")
    m = schema.merge([a, b, a])
    assert [r["id"] for r in m["runs"]] == ["r1", "r2"]
    assert [r["case_id"] for r in m["records"]] == ["a", "b", "c", "a"]
    pa, pb = _write(tmp_path / "a.json", a), _write(tmp_path / "b.json", b)
    out = tmp_path / "sub" / "m.json"
    res = _run("merge", "--out", str(out), pa, pb)
    assert res.returncode == 0, res.stderr
    assert schema.load(str(out))["records"] == a["records"] + b["records"]


# ------------------------------------------------------------------------------------------------------------
# cells and rounding


def test_ulp_rounds_up_to_three_significant_digits():
    cases = {0: "0", 0.1234: "0.124", 0.5: "0.500", 1.0: "1.00", 1.001: "1.01", 3877.2: "3880", 999.5: "1000",
             999.0: "999", 100.0: "100", 1234567.0: "1.24e+6", 1e-7 * 1.0000001: "1.01e-7", math.inf: "inf"}
    for v, text in cases.items():
        assert C.fmt_ulp(v) == text, v
    rng = random.Random(3)
    from oracles.formats import format_ulps

    for _ in range(3000):
        v = 10 ** rng.uniform(-8, 12) * rng.choice((1, 1.0000001, 0.9999999))
        t = C.fmt_ulp(v)
        assert float(t) >= v and float(t) <= v * 1.01 + 1e-300, (v, t)  # never below, within one digit
        assert t == format_ulps(v), v  # the digits the terminal summary prints


def test_parameter_family_reads_only_parameters():
    assert C.family(_rec()) == "reduction=mean"
    assert (C.family(_rec(params={"reduction": "sum", "label_smoothing": (0.1).hex()}))
            == "reduction=sum label_smoothing")
    assert C.family(_rec(params={"label_smoothing": "0x0.0p+0", "dim": 1})) == "reduction=mean"
    assert C.family(_rec(loss="softplus", params={"beta": 2.0})) == "beta"
    assert C.family(_rec(loss="sigmoid")) == "default"


def test_cells_keep_reported_only_records_apart():
    cells = C.summarize([_rec("a", ulp=3.0), _rec("b", verdict="broken", ulp=math.inf, gating=False,
                                                   deviation="d1"),
                         _rec("c", verdict="not supported", elements=0, cr=0, ulp=0.0)])
    (c,) = cells.values()
    assert (c["max_ulp"], c["worst"], c["reported"], c["reported_worst"]) == (3.0, "accurate", 1, "broken")
    assert (c["compared"], c["not_supported"], c["deviations"]) == (2, 1, {"d1": 1})


# ------------------------------------------------------------------------------------------------------------
# the gate


def _base():
    return _results(_rec("a", ulp=10.0, elements=100, cr=90), _rec("b", ulp=2.0, elements=100, cr=90),
                    _rec("x", loss="softmax", params={}, ulp=0.5, elements=10, cr=10, verdict="correctly_rounded"))


def test_identical_results_pass_the_gate():
    r = G.gate(_base(), _base())
    assert r.ok and not r.improvements and r.compared == 2


@pytest.mark.parametrize("change, what", [
    (lambda d: d["records"][1].update(verdict="unstable"), "new unstable verdict: b::corpus"),
    (lambda d: d["records"][0].update(max_ulp=11.1), "max ULP grew"),  # 10 -> 11.1 > 10 + max(1, 1.0)
    (lambda d: d["records"][2].update(max_ulp=1.6), "max ULP grew"),  # 0.5 -> 1.6 > 0.5 + 1
    (lambda d: d["records"][0].update(correctly_rounded=87), "correctly rounded rate fell"),  # 90% -> 88.5%
    (lambda d: d["records"].pop(2), "cell missing"),
    (lambda d: d["records"][2].update(elements=0, verdict="not supported"), "no gating numbers compared"),
])
def test_each_kind_of_regression_fails_the_gate(change, what):
    new = _base()
    change(new)
    r = G.gate(_base(), new)
    assert not r.ok
    assert any(what in c.what for c in r.regressions), [c.what for c in r.regressions]


def test_changes_within_the_margins_pass_and_improvements_are_reported():
    new = _base()
    new["records"][0]["max_ulp"] = 10.9  # within max(1, 10%)
    new["records"][0]["correctly_rounded"] = 89  # 89.5%: within 1 point
    assert G.gate(_base(), new).ok
    base = _base()
    base["records"][1]["verdict"] = "unstable"
    new = _base()
    new["records"][0]["max_ulp"] = 5.0
    r = G.gate(base, new)
    assert r.ok and {c.what.split(":")[0] for c in r.improvements} == {"no longer unstable",
                                                                      "max ULP fell by more than max(1, 10%)"}


def test_missing_cells_are_allowed_on_request_and_new_cells_are_listed():
    new = _base()
    new["records"].pop(2)
    assert G.gate(_base(), new, allow_missing=True).ok
    new = _base()
    new["records"].append(_rec("n", loss="sigmoid"))
    r = G.gate(_base(), new)
    assert r.ok and len(r.new) == 1


def test_only_corpus_records_gate():
    new = _base()
    new["records"].append(_rec("h", verdict="broken", ulp=math.inf, source="hypothesis"))
    assert G.gate(_base(), new).ok


def test_gate_command_exit_codes_table_and_update(tmp_path):
    res_ok = _write(tmp_path / "ok.json", _base())
    worse = _base()
    worse["records"][1]["verdict"] = "broken"
    worse["records"][0]["max_ulp"] = 50.0
    res_bad = _write(tmp_path / "bad.json", worse)
    baseline = tmp_path / "baseline.json"

    r = _run("gate", "--baseline", str(baseline), res_ok, "--update")
    assert r.returncode == 0, r.stderr
    doc = json.loads(baseline.read_text())
    assert doc["schema"] == G.BASELINE_SCHEMA and len(doc["environments"]) == 1
    assert len(doc["environments"][0]["cells"]) == 2
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")] == []

    r = _run("gate", "--baseline", str(baseline), res_ok)
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run("gate", "--baseline", str(baseline), res_bad)
    assert r.returncode == 1
    assert "REGRESSION" in r.stdout and "new broken verdict: b::corpus" in r.stdout and "max ULP grew" in r.stdout
    # a results document serves as a baseline too
    assert _run("gate", "--baseline", res_ok, res_bad).returncode == 1
    # --update accepts the change
    assert _run("gate", "--baseline", str(baseline), res_bad, "--update").returncode == 0
    assert _run("gate", "--baseline", str(baseline), res_bad).returncode == 0


def _blind():
    """Results whose torch BCE cell compared numbers, every one reported only (under the -100 clamp)."""
    new = _base()
    new["records"] += [_rec(f"p{i}", loss="binary_cross_entropy", params={"reduction": "none"}, ulp=1e6,
                            verdict="unstable", gating=False, deviation="torch-bce-log-clamp") for i in range(3)]
    return new


def test_a_cell_with_no_gating_numbers_is_a_corpus_error(tmp_path):
    """Issue 14 item 3: a cell whose every record is reported only cannot show a regression: the gate refuses the
    run (in process and as the command: one line, exit 2), and --update refuses to write it into a baseline."""
    blind = "torch binary_cross_entropy [reduction=none] cpu float32"
    with pytest.raises(G.CorpusError, match=re.escape(blind)):
        G.gate(_base(), _blind())
    with pytest.raises(G.CorpusError, match="1 cell with no gating numbers"):
        G.updated(None, _blind())
    ok = _blind()
    ok["records"].append(_rec("p-interior", loss="binary_cross_entropy", params={"reduction": "none"}))
    assert G.gate(_base(), ok).ok  # one gating case is enough: the cell is new, nothing regressed
    baseline = _write(tmp_path / "base.json", _base())
    bad = _write(tmp_path / "blind.json", _blind())
    for extra in ((), ("--update",)):
        r = _run("gate", "--baseline", baseline, bad, *extra)
        assert r.returncode == 2, (r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "corpus error" in lines[0] and blind in lines[0], r.stderr
        assert "torch-bce-log-clamp" in lines[0] and "Traceback" not in r.stderr
    assert json.loads(Path(baseline).read_text())["records"] == _base()["records"]  # --update wrote nothing
    # a cell that compares nothing at all (not supported) is no corpus error: a regression, as before
    gone = _base()
    gone["records"][2].update(elements=0, verdict="not supported")
    assert any("no gating numbers compared" in c.what for c in G.gate(_base(), gone).regressions)


def test_gate_command_bad_input_is_one_line_exit_2(tmp_path):
    ok = _write(tmp_path / "ok.json", _base())
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"schema": "lossproof-results", "vers')
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": G.BASELINE_SCHEMA, "version": 0, "cells": []}))
    empty = _write(tmp_path / "empty.json", _results(_rec("h", source="hypothesis")))
    for args, msg in [(("--baseline", str(tmp_path / "nope.json"), ok), "no such file"),
                      (("--baseline", ok, str(corrupt)), "not valid JSON"),
                      (("--baseline", str(old), ok), "baseline schema version 0"),
                      (("--baseline", str(tmp_path), ok), "is a directory"),
                      (("--baseline", ok, empty), "no corpus records")]:
        r = _run("gate", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0] and "Traceback" not in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------------------------
# the HTML report


def _cell_ids(text):
    return set(re.findall(r'data-cell="([^"]+)"', text))


def test_report_is_self_contained_and_links_every_cell(tmp_path):
    doc = _doc(600)
    out = tmp_path / "report.html"
    assert html.build_report(doc, str(out)) == str(out)
    text = out.read_text()
    # offline: no scripts, style sheets, fonts or images from anywhere
    assert "<script" not in text and "<link" not in text and "@import" not in text and "url(http" not in text
    assert not re.search(r'\ssrc="', text)
    for m in re.finditer(r'<(\w+)[^>]*\shref="(https?:[^"]*)"', text):
        assert m.group(1) == "a", m.group(0)  # plain links to documentation only
    assert "<?xml" not in text
    # the summary table: one cell per corpus cell, each linking to its section
    expected = {C.anchor(k) for k in C.summarize(C.corpus_records(doc))}
    assert _cell_ids(text) == expected and len(expected) == len(BENCH.cells())
    for a in expected:
        assert f'href="#{a}"' in text and f'id="{a}"' in text
    assert text.count('<svg role="img" class="plot"') == len(expected)
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "duplicate ids across the inlined SVGs"
    assert 'id="no-corpus"' not in text


def test_report_cells_show_rounded_up_ulp_and_the_rate(tmp_path):
    doc = _results(_rec("a", ulp=3877.2, elements=10, cr=7, verdict="stable"),
                   _rec("b", ulp=0.1234, loss="softmax", elements=4, cr=4, verdict="correctly_rounded"))
    out = tmp_path / "r.html"
    html.build_report(doc, str(out))
    text = out.read_text()
    cell = re.search(r'<td class="cell v-stable"[^>]*>.*?</td>', text, re.S).group(0)
    assert ">3880<" in cell and "70.0%" in cell
    assert re.search(r'<td class="cell v-correctly_rounded"[^>]*>.*?>0\.124<', text, re.S)


def test_report_without_corpus_falls_back_and_says_so(tmp_path):
    doc = _doc(100)
    for r in doc["records"]:
        r["source"] = "fixed"
    out = tmp_path / "r.html"
    html.build_report(doc, str(out))
    text = out.read_text()
    assert 'id="no-corpus"' in text and _cell_ids(text)


def test_report_sections_from_optional_files(tmp_path):
    doc = _doc(60)
    zoo = {"records": [{"kind": "member", "name": "naive_softplus", "loss": "softplus", "framework": "torch",
                        "format": "float32", "mistake": "log(1 + exp(x))", "category": "c", "gap": None,
                        "lossproof": {"caught": True, "property": "no_overflow", "seconds_to_failure": 0.4,
                                      "minimal": {"input": [89.0]}},
                        "usual": {"caught": False, "seconds_to_failure": None, "samples": 20}},
                       {"kind": "member", "name": "labels_through_half", "loss": "nll_loss", "framework": "torch",
                        "format": "bfloat16", "mistake": "labels cast", "category": "c", "gap": None,
                        "lossproof": {"caught": True, "property": "agreement", "seconds_to_failure": 0.1,
                                      "minimal": {"input": [[-1.0] * 257 + [1.0]], "target": [257]},
                                      "minimal_text": "{input: [[-1.0 x257, 1.0]], target: [257]}"},
                        "usual": {"caught": False, "seconds_to_failure": None, "samples": 20}}],
           "summary": {"members": 1, "controls": 0,
                       "lossproof": {"kill_rate": 1.0, "median_seconds_to_detection": 0.4, "caught": 1,
                                     "false_alarms": 0},
                       "usual": {"kill_rate": 0.0, "median_seconds_to_detection": None, "caught": 0,
                                 "false_alarms": 0}}}
    zp = tmp_path / "zoo.json"
    zp.write_text(json.dumps(zoo))
    out = tmp_path / "r.html"
    html.build_report(doc, str(out), zoo_path=str(zp), worst_known_path=str(ROOT / "reports" / "worst_known.json"))
    text = out.read_text()
    assert 'id="detection"' in text and "naive_softplus" in text and 'id="worst-known"' in text
    # the minimal input of each member: as detect wrote it (runs compacted), else its JSON
    assert '{"input":[89.0]}' in text.replace("&#34;", '"') and "[[-1.0 x257, 1.0]]" in text
    html.build_report(doc, str(out), zoo_path=str(tmp_path / "absent.json"), worst_known_path=None)
    text = out.read_text()
    assert 'id="detection"' not in text and 'id="worst-known"' not in text
    zp.write_text("{")
    with pytest.raises(html.ReportInputError):
        html.build_report(doc, str(out), zoo_path=str(zp))


def test_report_counts_deviations_seed_cases_and_assert_close_misses(tmp_path):
    from subjects.deviations import DEVIATIONS

    dev = DEVIATIONS[0].id
    r1 = _rec("d", verdict="unstable", ulp=400.0, gating=False, deviation=dev)
    seed = _rec("s", verdict="stable", ulp=5152.0)
    seed["property"] = "seed_notebook_result_is_reproduced_bit_for_bit"
    miss = _rec("m", verdict="unstable", ulp=900.0, fmt="float32")
    miss["worst"] = {"kind": "value", "index": [0], "y": (1.0 + 2 ** -20).hex(), "z": "1.0", "z_rounded": "0x1p+0",
                     "ulp": 16.0, "bits": 4.1, "verdict": "unstable", "input": {"input": [1.0.hex()]},
                     "input_numbers": 1}
    caught = copy.deepcopy(miss)
    caught["case_id"], caught["worst"]["y"] = "k", (1.0 + 2 ** -10).hex()
    assert page.assert_close_passes(miss) is True and page.assert_close_passes(caught) is False
    out = tmp_path / "r.html"
    html.build_report(_results(r1, seed, miss, caught), str(out))
    text = out.read_text()
    row = re.search(rf'<tr id="dev-{re.escape(dev)}">.*?</tr>', text, re.S).group(0)
    assert re.search(r'<td class="num">1</td>', row)
    assert "seed_notebook_result_is_reproduced_bit_for_bit" in text
    impact = text[text.index('id="impact"'):]
    assert re.search(r'<td class="num">3</td><td class="num"><b>1</b></td>', impact)  # r1 has no worst element


def test_reproducers_reproduce(tmp_path):
    """The torch reproducer prints the subject's y; lossproof exact prints RN(z)."""
    torch = pytest.importorskip("torch")
    from lossproof.cli import main

    rec = _rec("seed", fmt="float32", verdict="stable", ulp=5152.3)
    rec["worst"] = {"kind": "grad", "index": [2], "y": "-0x1.1dc0000000000p-13",
                    "z": "-0.000136181241431066739340730056326536894", "z_rounded": "-0x1.1d97c00000000p-13",
                    "ulp": 5152.3, "bits": 12.3, "verdict": "stable",
                    "input": {"input": [["0x0.0p+0", "0x0.0p+0", "0x1.4000000000000p+3", "0x0.0p+0"]], "target": [2]},
                    "input_numbers": 5}
    rec["params"] = {"reduction": "sum"}
    code = reproducers.from_record(rec)
    buf = io.StringIO()
    with redirect_stdout(buf):
        exec(compile(code, "<reproducer>", "exec"), {})
    printed = buf.getvalue().strip().splitlines()
    assert torch is not None and printed[0] == rec["worst"]["y"]
    assert printed[1].startswith("exact -0.000136181241431066739") and rec["worst"]["z_rounded"] in printed[1]
    args = shlex.split(reproducers.exact_command(rec["loss"], rec["format"], {**rec["worst"]["input"],
                                                                               **rec["params"]}, grad=True))
    assert args[:2] == ["lossproof", "exact"]
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(args[1:]) == 0
    assert rec["worst"]["z_rounded"] in buf.getvalue().splitlines()[1 + 2]  # value line, then grads 0, 1, 2


def test_numpy_reproducer_runs(tmp_path):
    np = pytest.importorskip("numpy")
    from subjects import numpy_losses

    x = [0.5, -3.25, 80.0]
    y = np.asarray(numpy_losses.softplus(input=np.array(x, dtype=np.float32))).reshape(-1)[1]
    rec = _rec("n", subject="numpy", loss="softplus", fmt="float32")
    rec["worst"] = {"kind": "value", "index": [1], "y": float(y).hex(), "z": "0", "z_rounded": "0x0p+0", "ulp": 0,
                    "bits": 0, "verdict": "accurate", "input": {"input": [v.hex() for v in x]}, "input_numbers": 3}
    buf = io.StringIO()
    with redirect_stdout(buf):
        exec(compile(reproducers.from_record(rec), "<reproducer>", "exec"), {})
    assert buf.getvalue().strip().splitlines()[0] == float(y).hex()


def test_a_reproducer_writes_runs_of_equal_elements_once():
    """A minimal input of 256 equal numbers beside one other (a user's kl_div, 2026-12-07) made a reproducer of
    two lines of 256 spellings each; runs are written [e] * n, and the code still builds the same call."""
    np = pytest.importorskip("numpy")
    big, t, one = "-0x1.fffffffffffffp+1023", "0x1.48f70b8667af6p-15", "0x1.fae147ae147aep-1"
    kw = {"input": [big] * 256, "target": [t] * 152 + [one] + [t] * 103, "reduction": "mean"}
    code = reproducers.reproducer("numpy", "kl_div", "float64", "cpu", kw)
    assert max(len(line) for line in code.splitlines()) < 200, code
    assert f'[h("{big}")] * 256' in code and f'([h("{t}")] * 152 + [h("{one}")] + [h("{t}")] * 103)' in code, code
    env: dict = {"h": float.fromhex}
    for k in ("input", "target"):  # the source evaluates to the numbers it spells
        src = next(line for line in code.splitlines() if line.startswith(f"{k} = np.array("))
        got = eval(src.split(" = ", 1)[1], {**env, "np": np})
        assert got.tolist() == [float.fromhex(v) for v in kw[k]]
    row = '[h("0x1p+0"), h("0x1p+1")]'
    assert reproducers._py([["0x1p+0", "0x1p+1"]] * 3) == f"[{row}, {row}, {row}]"  # 3 < RUN: as before
    assert reproducers._py([["0x1p+0"]] * 4) == '[[h("0x1p+0")]] * 4'


def test_a_report_of_100000_records_shows_every_cell_and_counts_every_record(tmp_path):
    """A results document of the issue's size builds into one page whose summary links every corpus cell and
    counts every corpus record. How long it takes is benchmarks/report_speed.py's claim (measured there, not
    asserted here: a test's outcome does not depend on the machine's load)."""
    doc = _doc(100_000, with_other_sources=True)
    out = tmp_path / "big.html"
    assert html.build_report(doc, str(out)) == str(out)
    text = out.read_text()
    cells = C.summarize(C.corpus_records(doc))
    assert _cell_ids(text) == {C.anchor(k) for k in cells} and len(cells) == len(BENCH.cells())
    counted = [int(n) for n in re.findall(r'title="[^"]*?, (\d+) records, ', text)]
    assert len(counted) == len(cells) and sum(counted) == 100_000, (len(counted), sum(counted))


def test_report_command_builds_from_existing_results(tmp_path):
    p = _write(tmp_path / "r.json", _doc(200))
    out = tmp_path / "out" / "report.html"
    r = _run("report", "--no-run", "--results", p, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(out.resolve()) and out.exists()
    r = _run("report", "--no-run", "--results", str(tmp_path / "missing.json"), "--out", str(out))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_the_report_header_shows_xla_flags_only_where_a_run_set_them():
    env = {"jax": "0.10.2", "python": "3.11.7"}
    assert ("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=false") in page._env_line(
        {**env, "xla_flags": "--xla_cpu_use_fusion_emitters=false"})
    assert [k for k, _ in page._env_line({**env, "xla_flags": None})] == ["jax", "python"]
