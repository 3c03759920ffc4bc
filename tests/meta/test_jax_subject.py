"""JAX as a framework (issue 16): the jax subject's calling convention (exact inputs as JAX arrays in every format,
float64 with 64-bit types enabled for that call only, float16 and bfloat16 natively, the gradient through
jax.vjp), its documented behaviours (each real on its witness, and explained there), a user's JAX function under
the convention options (the class axis, what it returns), and the subject's absence (skipped with the reason)."""

from __future__ import annotations

import math

import pytest

from lossproof import cases, judge
from lossproof.measure import measure
from subjects import deviations, jax_subject, torch_subject
from subjects.user import SubjectError, UserSubject, accepted_parameters

if jax_subject.missing():
    pytest.skip(jax_subject.missing(), allow_module_level=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

CASES = {(c.loss, c.fmt): c for c in cases.jax_cases() if c.device == "cpu"}
JAX_DEVIATIONS = [d for d in deviations.DEVIATIONS if d.subject == "jax"]


def UP(values):
    """The upstream a JAX gradient is measured with: torch's (subjects/jax_subject.run)."""
    return torch_subject.upstream(len(values))


def test_float64_is_computed_in_float64_and_x64_is_enabled_for_that_call_only():
    # softplus(2**-30) = log 2 + 2**-31 - ...: float64 holds the 2**-31 term, float32 does not (a silent float32
    # computation would return float32's log 2, 0.6931471824645996)
    values, _ = CASES[("softplus", "float64")].call({"input": [2.0 ** -30]})
    assert values[0] != 0.6931471824645996
    assert abs(values[0] - (math.log(2) + 2.0 ** -31)) < 1e-15
    assert not jax.config.jax_enable_x64, "64-bit types stayed enabled after the call"


@pytest.mark.parametrize("fmt", ["float16", "bfloat16", "float32"])
def test_narrow_formats_are_native_and_returned_in_their_format(fmt):
    kw = {"input": [[0.0, 1.0, 3.0], [2.0, 3.0, 0.5]], "target": [0, 1]}
    values, grads = CASES[("cross_entropy", fmt)].call(kw)
    m = measure("jax", "cross_entropy", fmt, "cpu", kw, values, grads, upstream=UP(values))
    # values in the format: rounding them to it changes nothing
    from oracles.formats import round_to_format
    assert all(round_to_format(v, fmt) == v for v in values + grads)
    assert m.verdict in ("stable", "accurate", "correctly_rounded"), m.verdict


def test_the_gradient_is_jax_vjp_of_the_upstream_weighted_sum():
    kw = {"input": [[0.0, 1.0], [2.0, 0.0]], "target": [0, 0], "reduction": "sum"}
    _, grads = CASES[("cross_entropy", "float64")].call(kw)
    p = [1 / (1 + math.e), math.e / (1 + math.e)]
    q = [math.e ** 2 / (1 + math.e ** 2), 1 / (1 + math.e ** 2)]
    want = [p[0] - 1, p[1], q[0] - 1, q[1]]
    assert all(abs(g - w) < 1e-15 for g, w in zip(grads, want)), grads
    # per example ("none"): the gradient of sum(upstream * output), torch's upstream, as torch computes it
    kw = dict(kw, reduction="none")
    values, grads = CASES[("cross_entropy", "float64")].call(kw)
    want = torch_subject.run(torch_subject.function("cross_entropy"), "cross_entropy", "float64", "cpu", kw)[1]
    assert torch_subject.upstream(2) != [1.0, 1.0]
    assert grads == pytest.approx(want, rel=1e-15, abs=1e-15), (grads, want)


def test_softmax_gradient_is_checked():
    """With a non-uniform upstream softmax's gradient is not identically zero: JAX's is measured and certified."""
    kw = {"input": [[0.0, 1.0, 3.0], [2.0, 3.0, 0.5]]}
    values, grads = CASES[("softmax", "float64")].call(kw)
    assert grads is not None and any(abs(g) > 1e-3 for g in grads), grads
    m = measure("jax", "softmax", "float64", "cpu", kw, values, grads, upstream=UP(values))
    assert any(e.kind == "grad" for e in m.elements)
    assert m.verdict in ("stable", "accurate", "correctly_rounded"), m.verdict


def test_optax_integer_labels_at_a_large_offset_return_0_where_torch_returns_log_c():
    """The issue's finding, on jax 0.10.2 / optax 0.2.8: 3,521 equal float32 logits at 2**30."""
    kw = {"input": [[2.0 ** 30] * 3521], "target": [0]}
    got, _ = CASES[("cross_entropy", "float32")].call(kw)
    torch_got, _ = torch_subject.run(torch_subject.function("cross_entropy"), "cross_entropy", "float32", "cpu", kw)
    assert got == [0.0]
    assert abs(torch_got[0] - math.log(3521)) < 1e-5
    (d,) = deviations.matching("jax", "cross_entropy", kw, "float32")
    assert d.id == "optax-ce-integer-labels-offset"


def test_jax_behaviours_are_documented_deviations():
    """JAX's documented behaviours are in DEVIATIONS: the battery's witness test (lossproof/battery/
    test_known_cases.py) runs each on the jax subject, and the scope family (tests/meta/test_deviation_scope.py)
    fabricates outputs outside each."""
    assert {d.id for d in JAX_DEVIATIONS} >= {"optax-ce-integer-labels-offset", "jax-ce-mean-overflow",
                                              "jax-bce-with-logits-mean-overflow"}


def test_the_offset_bound_does_not_excuse_a_far_value():
    """The documented formula's bound, not any value: a result 4 x beyond it is not explained."""
    (dev,) = [d for d in JAX_DEVIATIONS if d.id == "optax-ce-integer-labels-offset"]
    fmt, kw = dev.witness
    values, grads = CASES[(dev.loss, fmt)].call(kw)
    m = measure("jax", dev.loss, fmt, "cpu", kw, values, grads, upstream=UP(values))
    from fractions import Fraction
    bound = dev.documented_error(kw, fmt, "value", 0, Fraction(math.log(3521)), None)
    from oracles.formats import round_to_format
    far = round_to_format(math.log(3521) + float(4 * bound), fmt)
    mf = measure("jax", dev.loss, fmt, "cpu", kw, [far], grads, upstream=UP([far]))
    assert not judge.explains(dev, None, mf, kw, [far])[0]
    assert judge.explains(dev, None, m, kw, values)[0]


def per_example_ce(logits, labels):
    """optax's per-example loss, the classes last: checked with --class-axis -1 --returns per-example."""
    return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)


def _user_case(fn, loss, fmt, **conv):
    u = UserSubject(loss, f"t:{fn.__name__}", "jax", fn, accepted_parameters(fn), **conv)
    (case,) = [c for c in cases.user_cases(u, False) if c.fmt == fmt and c.device == "cpu"]
    return case


def test_a_per_example_classes_last_function_needs_no_adapter():
    case = _user_case(per_example_ce, "cross_entropy", "float32", class_axis=-1, returns="per-example")
    assert case.only == (("reduction", "none"),)
    # a (N, C, d) input: the classes on axis 1 as lossproof draws them, on the last axis as the function takes them
    kw = {"input": [[[0.0, 1.0], [2.0, -1.0], [0.5, 0.25]]], "target": [[2, 0]], "reduction": "mean"}
    call = cases.restrict(case, kw)
    assert call["reduction"] == "none"
    values, grads = case.call(call)
    want, _ = torch_subject.run(torch_subject.function("cross_entropy"), "cross_entropy", "float32", "cpu", call)
    assert values == pytest.approx(want, rel=1e-6)
    m = measure(case.subject, "cross_entropy", "float32", "cpu", call, values, grads, upstream=UP(values))
    assert m.verdict in ("stable", "accurate", "correctly_rounded")


def test_a_classes_last_softmax_is_moved_back():
    case = _user_case(lambda input: jax.nn.softmax(input, axis=-1), "softmax", "float64", class_axis=-1)
    kw = {"input": [[[0.0, 1.0], [2.0, -1.0], [0.5, 0.25]]]}  # 3-d: torch's implicit dim is 0
    values, _ = case.call(cases.restrict(case, kw))
    m = measure(case.subject, "softmax", "float64", "cpu", cases.restrict(case, kw), values, None)
    assert m.verdict in ("accurate", "correctly_rounded"), m.verdict


@pytest.mark.parametrize("loss,conv,message", [
    ("cross_entropy", {"class_axis": 2}, "class axis 2"),
    ("softplus", {"class_axis": -1}, "softplus has no class axis"),
    ("cross_entropy", {"returns": "median"}, "returns 'median'"),
    ("softplus", {"returns": "sum"}, "softplus does not reduce"),
    ("cross_entropy", {"returns": "reduction-arg"}, "takes no reduction argument"),
])
def test_impossible_conventions_are_refused(loss, conv, message):
    with pytest.raises(SubjectError, match=message):
        UserSubject(loss, "t:per_example_ce", "jax", per_example_ce, accepted_parameters(per_example_ce), **conv)


def test_a_user_jax_function_is_forgiven_what_jax_shares():
    """The shared-deviation policy with JAX's reference: optax's own large-offset behaviour, in a user's loss built
    on it, is "shared with jax", not the user's; torch is not the reference of a JAX function."""
    def mean_ce(input, target):
        return jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(input, target, axis=1))

    case = _user_case(mean_ce, "cross_entropy", "float32")
    assert judge.reference_of(case) == "jax"
    kw = {"input": [[2.0 ** 30] * 3521], "target": [0]}
    values, grads = case.call(kw)
    m = measure(case.subject, "cross_entropy", "float32", "cpu", kw, values, grads, upstream=UP(values))
    deviation, problem = judge.judge(case, kw, m, values)
    assert problem is None and deviation == "shared with jax: optax-ce-integer-labels-offset"
    deviation, problem = judge.judge(case, kw, m, values, strict=True)
    assert deviation is None and "shared with jax (gating under --strict)" in problem


def test_without_jax_every_jax_case_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(jax_subject, "missing", lambda: "JAX is not installed (pip install 'lossproof[jax]')")
    out = cases.jax_cases()
    assert out and all(c.skip == "JAX is not installed (pip install 'lossproof[jax]')" for c in out)
    assert {c.loss for c in out} == {k[0] for k in CASES}


@pytest.mark.parametrize("fmt,big", [("float32", 1.7014117331926443e+38), ("float64", 8.98846567431158e307),
                                     ("bfloat16", 1.6947656946257677e+38)])
def test_careful_jax_ce_mean_overflow_at_the_format_edge_is_shared_with_jax(fmt, big):
    """examples/jax_losses.py's careful loss averages with jnp.mean, whose sum of 4 x (max / 2) overflows: what
    JAX's own mean does (jax-ce-mean-overflow), so "shared with jax", never a crash (float64's optax offset bound
    overflowed float arithmetic before it was computed exactly) nor a failure of the user's."""
    import sys
    sys.path.insert(0, "examples")
    import jax_losses

    case = _user_case(jax_losses.careful_jax_ce, "cross_entropy", fmt, class_axis=-1)
    kw = cases.restrict(case, {"input": [[0.0, big]] * 4, "target": [0] * 4})
    values, grads = case.call(kw)
    assert values == [math.inf]
    m = measure(case.subject, "cross_entropy", fmt, "cpu", kw, values, grads, upstream=UP(values))
    assert judge.judge(case, kw, m, values) == ("shared with jax: jax-ce-mean-overflow", None)
    assert judge.overflow_failure(case, kw, values, grads) is None
