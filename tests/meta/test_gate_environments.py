"""The regression gate across environments (reports/gate.py, reports/environment.py): numbers against a baseline
of the same environment, verdict rungs only against another one, ``--update`` keeping every other environment,
the corpus under two of this machine's CPU capabilities (``ATEN_CPU_CAPABILITY``) passing the committed
baseline for both, and a simulated regression of torch's binary_cross_entropy caught (issue 14 item 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reports import environment as E
from reports import gate as G
from reports import schema

ROOT = Path(__file__).resolve().parents[2]
LOSSPROOF = [sys.executable, "-c", "import sys; from lossproof.cli import main; sys.exit(main())"]

AVX512 = {"machine": "x86_64", "torch": "2.13.0+cpu", "torch_cpu_capability": "AVX512", "torch_threads": 2,
          "numpy": "2.4.6", "numpy_simd": ["X86_V3", "X86_V4"]}
AVX2 = {**AVX512, "torch_cpu_capability": "AVX2"}


def _rec(case, verdict="accurate", ulp=1.0, elements=10, cr=8, run="r1", loss="cross_entropy"):
    return {"run": run, "source": "corpus", "case_id": case, "property": "corpus", "subject": "torch", "loss": loss,
            "device": "cpu", "format": "float32", "params": {}, "regime": None, "elements": elements,
            "max_ulp": ulp, "mean_bits": 0.1, "correctly_rounded": cr, "verdicts": {verdict: 1}, "verdict": verdict,
            "reason": None, "gating": True, "deviation": None, "worst": None, "oracle_precision": 64}


def _results(env, *records, run="r1"):
    return schema.document([{"id": run, "command": "pytest", "profile": "ci", "started": "2026-01-01T00:00:00+00:00",
                             "environment": {**env, "python": "3.11.7", "hypothesis": "6"}}],
                           [dict(r, run=run) for r in records])


def _base(env=AVX512):
    return _results(env, _rec("a", ulp=10.0, elements=100, cr=90), _rec("b", ulp=2.0, elements=100, cr=90))


def test_the_environment_id_reads_only_what_selects_kernels():
    assert E.environment_id(AVX512) == E.environment_id({**AVX512, "python": "3.12", "hypothesis": "7"})
    assert E.environment_id(AVX512) != E.environment_id(AVX2)
    assert E.environment_id(AVX512) != E.environment_id({**AVX512, "torch_threads": 4})
    assert E.environment_id({}) == "unknown"
    # XLA's flags compile JAX's functions otherwise (other float16 bits, reports/environment.py); unset, no field
    flagged = {**AVX512, "xla_flags": "--xla_cpu_use_fusion_emitters=false"}
    assert E.environment_id(flagged) != E.environment_id(AVX512)
    assert E.environment_id({**AVX512, "xla_flags": None}) == E.environment_id(AVX512)
    assert "XLA_FLAGS='--xla_cpu_use_fusion_emitters=false'" in E.describe(flagged)
    assert "cpu AVX512" in E.describe(AVX512) and "2 threads" in E.describe(AVX512)


def test_the_recorded_environment_holds_xla_flags_only_where_set(monkeypatch):
    from lossproof.recorder import environment

    monkeypatch.setenv("XLA_FLAGS", " --xla_cpu_use_fusion_emitters=false ")
    assert environment()["xla_flags"] == "--xla_cpu_use_fusion_emitters=false"
    monkeypatch.delenv("XLA_FLAGS")
    assert environment()["xla_flags"] is None
    assert "xla_flags" not in E.kernel_fields(environment())


def test_numbers_compare_only_within_one_environment():
    grown = _base(AVX2)
    grown["records"][0]["max_ulp"] = 55.0  # ULP counts and rates of another CPU's kernels
    grown["records"][1]["correctly_rounded"] = 10
    res = G.gate(_base(AVX512), grown)
    assert res.ok and len(res.notes) == 1 and "compared verdict rungs" in res.notes[0], res
    same = _base(AVX512)
    same["records"][0]["max_ulp"] = 55.0
    res = G.gate(_base(AVX512), same)
    assert not res.ok and any("max ULP grew" in c.what for c in res.regressions) and not res.notes


def test_a_case_below_the_pass_line_regresses_in_any_environment():
    worse = _base(AVX2)
    worse["records"][1]["verdict"] = "unstable"
    res = G.gate(_base(AVX512), worse)
    assert not res.ok and [c.what for c in res.regressions] == ["new unstable verdict: b::corpus"]
    # a case already failing in some baseline environment is known there; failing worse is not
    base = G.baseline_document([*G.environments_of(_base(AVX512))])
    failing = _base(AVX512)
    failing["records"][1]["verdict"] = "unstable"
    base, _ = G.updated(base, failing)
    assert G.gate(base, worse).ok
    worse["records"][1]["verdict"] = "broken"
    assert not G.gate(base, worse).ok


def test_a_cell_that_compares_nothing_or_is_missing_regresses_in_any_environment():
    empty = _base(AVX2)
    empty["records"][1].update(elements=0, verdict="not supported")
    empty["records"][0].update(elements=0, verdict="not supported")
    assert any("no gating numbers" in c.what for c in G.gate(_base(AVX512), empty).regressions)
    other = _results(AVX2, _rec("x", loss="softmax"))
    res = G.gate(_base(AVX512), other)
    assert any("cell missing" in c.what for c in res.regressions) and len(res.new) == 1
    assert G.gate(_base(AVX512), other, allow_missing=True).ok


def test_update_adds_or_replaces_one_environment_and_keeps_the_others(tmp_path):
    doc, lines = G.updated(None, _base(AVX512))
    assert len(doc["environments"]) == 1 and lines[0].startswith("added")
    doc, lines = G.updated(doc, _base(AVX2))
    assert len(doc["environments"]) == 2 and lines[0].startswith("added")
    changed = _base(AVX2)
    changed["records"][0]["max_ulp"] = 99.0
    doc, lines = G.updated(doc, changed)
    assert len(doc["environments"]) == 2 and lines[0].startswith("replaced")
    path = tmp_path / "b.json"
    G.write_baseline(str(path), doc)
    back = G.load_baseline(str(path))
    envs = {e.id: e for e in G.environments_of(back)}
    assert envs[E.environment_id(AVX2)].cells[("torch", "cross_entropy", "reduction=mean", "cpu", "float32")][
        "max_ulp"] == 99.0
    assert envs[E.environment_id(AVX512)].cells[("torch", "cross_entropy", "reduction=mean", "cpu", "float32")][
        "max_ulp"] == 10.0


def test_a_version_1_baseline_is_an_unknown_environment(tmp_path):
    cells = G.cells_of(_base(AVX512))
    v1 = {"schema": G.BASELINE_SCHEMA, "version": 1, "created": "x", "runs": [],
          "cells": [dict(c) for c in cells.values()]}
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1))
    res = G.gate(G.load_baseline(str(path)), _base(AVX512))
    assert res.ok and res.notes and "unknown environment" in res.notes[0]


def _capabilities():
    """This machine's current torch CPU capability and a lower one it can be forced to."""
    torch = pytest.importorskip("torch")
    now = torch.backends.cpu.get_cpu_capability()
    lower = {"AVX512": "AVX2", "AVX2": "DEFAULT"}.get(now.upper())
    if lower is None:
        pytest.skip(f"torch's CPU capability here is {now}: no lower capability to compare with")
    return now, lower


def test_the_committed_baseline_passes_the_corpus_under_two_cpu_capabilities(tmp_path):
    """The corpus (torch's cells) under this machine's CPU capability and a lower one: the gate against the
    committed baseline passes for both (numbers where the baseline has this environment, rungs otherwise)."""
    now, lower = _capabilities()
    outcomes = {}
    for cap in (now, lower):
        results = tmp_path / f"{cap}.json"
        env = {**os.environ, "ATEN_CPU_CAPABILITY": cap.lower()}
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                              "tests/test_corpus.py", "--lossproof-only-subjects", "torch",
                              "--lossproof-results", str(results)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        doc = schema.load(str(results))
        assert doc["runs"][0]["environment"]["torch_cpu_capability"] == cap.upper()
        gate = subprocess.run([*LOSSPROOF, "gate", "--baseline", str(ROOT / "reports" / "baseline.json"),
                               str(results), "--allow-missing"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        outcomes[cap] = gate
        assert gate.returncode == 0, f"{cap}:\n{gate.stdout}{gate.stderr}"
    assert "0 regressions" in outcomes[now].stdout and "0 regressions" in outcomes[lower].stdout


# ------------------------------------------------------------------------------------------------------------
# issue 14 item 3: the gate sees every cell


def _corpus_run(case):
    """The battery's corpus test (lossproof/battery/test_corpus.py) on one case: (a results document of its
    records, the test's failure message or None)."""
    from types import SimpleNamespace

    from lossproof.battery.test_corpus import test_corpus

    records = []

    def record(m, deviation=None, gating=True, *, case_id=None, regime=None, prop_=None, required=None):
        records.append(schema.record_of(m, kwargs=m.kwargs, deviation=deviation, gating=gating, source="corpus",
                                        prop="corpus", case_id=case_id, run="r1", regime=regime, required=required))

    try:
        test_corpus(case, record, SimpleNamespace(strict_specials=False))
        failure = None
    except AssertionError as e:
        failure = str(e)
    return _results(AVX512, *records), failure


def _bce_case(fmt="float32"):
    from lossproof import cases

    (case,) = [c for c in cases.torch_cases(False) if c.loss == "binary_cross_entropy" and c.fmt == fmt
               and c.device == "cpu"]
    return case


def _doubled_gradient(monkeypatch):
    """torch's binary_cross_entropy with its gradient in the input doubled (its values unchanged)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    real = F.binary_cross_entropy

    class Twice(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    def doubled(input, target, *args, **kwargs):
        return real(Twice.apply(input), target, *args, **kwargs)

    monkeypatch.setattr(F, "binary_cross_entropy", doubled)


def test_a_doubled_bce_gradient_fails_the_corpus_and_the_gate(monkeypatch):
    """The issue's simulated regression: torch's binary_cross_entropy with its gradient doubled. Before, every
    corpus case of it held p = 0 or 1 (under the -100 clamp, whose documented behaviour was checked on the values
    only): it passed the corpus test and the gate. Run on the corpus's cases outside every documented deviation
    (those that gate; tests/meta/test_corpus_build.py checks every cell has some), torch's own function passes,
    and the doubled gradient fails the corpus test and the gate with a new failing case in every reduction."""
    from lossproof import corpus
    from subjects import deviations

    every = corpus.cases

    def gating_only(loss=None, fmt=None, dirs=()):
        return [c for c in every(loss, fmt, dirs)
                if not deviations.matching("torch", c["loss"], c["kwargs"], c["format"])]

    monkeypatch.setattr(corpus, "cases", gating_only)
    assert len(corpus.cases("binary_cross_entropy", "float32")) >= 3  # one per reduction at least

    clean, failure = _corpus_run(_bce_case())
    assert failure is None, failure
    baseline, _ = G.updated(None, clean)
    families = {c["family"] for c in baseline["environments"][0]["cells"]}
    assert families == {"reduction=none", "reduction=mean", "reduction=sum"}
    assert all(c["elements"] > 0 for c in baseline["environments"][0]["cells"])

    _doubled_gradient(monkeypatch)
    broken, failure = _corpus_run(_bce_case())
    assert failure is not None and "corpus cases fail" in failure, failure
    res = G.gate(baseline, broken)
    assert not res.ok
    failing = {c.key[2] for c in res.regressions if c.what.startswith(("new unstable verdict", "new broken verdict"))}
    assert failing == families, [c.what for c in res.regressions]  # a case below the pass line in every cell
