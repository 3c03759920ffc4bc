"""Fixed cases every run shows: the verdicts the issue pins and the seed notebook's six results reproduced bit
for bit by torch float32 (the special-value table per subject is test_special_values.py)."""

from __future__ import annotations

import math

import pytest

from lossproof import cases, judge
from lossproof.demo import SEED_CASES, round_inputs
from lossproof.measure import measure
from subjects import deviations, torch_subject


def torch_measure(loss, fmt, kwargs, oracle_name=None):
    values, grads = torch_subject.run(torch_subject.function(loss), loss, fmt, "cpu", kwargs)
    m = measure("torch", loss, fmt, "cpu", kwargs, values, grads, oracle_name=oracle_name,
                upstream=torch_subject.upstream(len(values)))
    return m, values


def test_torch_float32_cross_entropy_of_the_seed_row_is_stable_not_accurate(lossproof_record):
    m, _ = torch_measure("cross_entropy", "float32", {"input": [[0.0, 0.0, 10.0, 0.0]], "target": [2]})
    value = m.elements[0]
    assert value.verdict == "stable"
    assert 3876 < value.ulp_error < 3878
    lossproof_record(m)


def test_torch_float64_softplus_25_is_unstable_and_documented(lossproof_record):
    kw = {"input": 25.0}
    m, values = torch_measure("softplus", "float64", kw)
    assert values == [25.0]
    assert m.elements[0].verdict == "unstable"
    assert m.elements[0].z.startswith("25.0000000000138879")
    (d,) = deviations.matching("torch", "softplus", kw)
    assert d.id == "torch-softplus-threshold"
    documented, _ = torch_measure("softplus", "float64", kw, oracle_name=d.documented_oracle)
    assert documented.elements[0].verdict == "correctly_rounded"
    lossproof_record(m, d.id)


def test_torch_float64_bce_at_1e_50_is_unstable_and_documented(lossproof_record):
    kw = {"input": [1e-50], "target": [1.0]}
    m, values = torch_measure("binary_cross_entropy", "float64", kw)
    assert values == [100.0]
    assert m.elements[0].verdict == "unstable"
    assert m.elements[0].z.startswith("115.129254649702284")
    (d,) = deviations.matching("torch", "binary_cross_entropy", kw, "float64")
    documented = measure("torch", "binary_cross_entropy", "float64", "cpu", kw, values, None,
                         oracle_name=d.documented_oracle)
    assert documented.elements[0].verdict == "correctly_rounded"
    lossproof_record(m, d.id)


def test_torch_probability_targets_with_a_masked_logit_are_nan_where_the_loss_is_0(lossproof_record):
    """A real torch 2.13 deviation, recorded as data: 0 * (-inf) = NaN inside its soft-target path."""
    kw = {"input": [[0.0, -math.inf]], "target": [[1.0, 0.0]]}
    m, values = torch_measure("cross_entropy", "float32", kw)
    assert math.isnan(values[0]) and m.elements[0].z == "0.0" and m.elements[0].verdict == "broken"
    (d,) = deviations.matching("torch", "cross_entropy", kw)
    assert d.id == "torch-ce-prob-target-masked-logit"
    lossproof_record(m, d.id)


@pytest.mark.parametrize("label,name,kwargs,printed", SEED_CASES, ids=[c[0] for c in SEED_CASES])
def test_seed_notebook_result_is_reproduced_bit_for_bit(label, name, kwargs, printed, lossproof_record):
    kw = round_inputs(kwargs, "float32")
    m, values = torch_measure(name, "float32", kw)
    assert values == [printed], f"torch float32 now gives {values[0]!r} where the notebook printed {printed!r}"
    v = m.elements[0]
    print(f"{label}: torch {printed!r}, exact {v.z}, {v.ulp_error:.3g} ULP, {v.verdict}")
    assert v.verdict in ("stable", "accurate", "correctly_rounded")
    lossproof_record(m)


def witness_call(dev):
    """(values, gradient, upstream) of the deviation's subject's own function on its witness, through the subject's
    case (torch, SciPy, JAX: cases.all_cases), skipped with the reason where the library is absent."""
    fmt, kw = dev.witness
    (case,) = [c for c in cases.all_cases({dev.subject})
               if c.loss == dev.loss and c.fmt == fmt and c.device == "cpu"]
    if case.skip:
        pytest.skip(case.skip)
    values, grads = case.call(kw)
    return values, grads, torch_subject.upstream(len(values)) if case.framework in judge.UPSTREAM_FRAMEWORKS else None


@pytest.mark.parametrize("dev", deviations.DEVIATIONS, ids=[d.id for d in deviations.DEVIATIONS])
def test_documented_deviation_is_real_and_explained(dev, lossproof_record):
    """Every recorded deviation is data we verified: on its witness the library (torch 2.13, SciPy, JAX 0.10.2 /
    optax 0.2.8) really misses the exact value (values or gradient: not stable), the deviation's condition holds
    there, and its output is the documented one. If a release fixes it, this fails and the record must go."""
    fmt, kw = dev.witness
    assert dev in deviations.matching(dev.subject, dev.loss, kw, fmt), "the condition does not hold on the witness"
    values, grads, upstream = witness_call(dev)
    m = measure(dev.subject, dev.loss, fmt, "cpu", kw, values, grads, upstream=upstream)
    bad = m.failures()
    assert bad, f"{dev.subject} now meets the exact value on the witness of {dev.id}: {values}"
    ok, _ = judge.explains(dev, None, m, kw, values, upstream=upstream)
    assert ok, (f"{dev.id} does not explain {dev.subject}'s output on its witness: "
                f"{[(e.kind, e.index, e.y) for e in bad]}")
    lossproof_record(m, dev.id, False)
    print(f"{dev.id}: {len(bad)} element(s) off, worst {bad[0].kind} {bad[0].y!r} where exact {bad[0].z}")


def test_nll_weighted_term_overflow_is_recorded(lossproof_record):
    """Found by the battery: w_t x_t overflows before the weighted mean divides by w_t (float32 w_t = max
    finite, x_t = -10: +inf where the exact loss is 10). The recorded deviation covers it."""
    kw = {"input": [[-10.0, 0.0]], "target": [0], "weight": [3.4028234663852886e38, 1.0]}
    values, grads = torch_subject.run(torch_subject.function("nll_loss"), "nll_loss", "float32", "cpu", kw)
    m = measure("torch", "nll_loss", "float32", "cpu", kw, values, grads)
    assert values == [math.inf] and m.elements[0].z_rounded == 10.0 and m.elements[0].verdict == "broken"
    (d,) = deviations.matching("torch", "nll_loss", kw, "float32")
    assert d.id == "torch-nll-sum-overflow" and judge.explains(d, None, m, kw, values)[0]
    lossproof_record(m, d.id, True)
