"""The reproducer of a JAX finding (reports.reproducers' JAX branch) runs and prints the same y as lossproof
measured: jnp arrays in the format, the classes where the function takes them, the gradient through jax.vjp with
lossproof's upstream."""

from __future__ import annotations

import contextlib
import io
import math
import sys

import pytest

from lossproof import cases, judge
from lossproof.measure import measure
from subjects import jax_subject, torch_subject

if jax_subject.missing():
    pytest.skip(jax_subject.missing(), allow_module_level=True)

import optax  # noqa: E402

from subjects.user import UserSubject, accepted_parameters  # noqa: E402


def per_example_ce(logits, labels):
    return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)


def _printed(code: str) -> list:
    """What the reproducer prints, run in this process; JAX's global 64-bit switch, which a float64 reproducer
    turns on (as a user's script would), is restored after it (other tests check that lossproof's own calls leave
    it off)."""
    import jax

    out = io.StringIO()
    x64 = jax.config.jax_enable_x64
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<reproducer>", "exec"), {})
    finally:
        jax.config.update("jax_enable_x64", x64)
    return out.getvalue().splitlines()


def _check(case, kw):
    values, grads = case.call(kw)
    m = measure(case.subject, case.loss, case.fmt, "cpu", kw, values, grads,
                upstream=torch_subject.upstream(len(values)))
    for e in m.elements:
        code = judge.case_reproducer(case, kw, e)
        assert "jax" in code
        first = _printed(code)[0]
        assert float.fromhex(first) == e.y or (math.isnan(e.y) and math.isnan(float.fromhex(first))), (e, code)


@pytest.mark.parametrize("fmt", ["float64", "float32", "bfloat16"])
def test_jax_subject_reproducer_prints_the_measured_y(fmt):
    (case,) = [c for c in cases.jax_cases() if c.loss == "log_softmax" and c.fmt == fmt and c.device == "cpu"]
    _check(case, {"input": [[0.0, 1.0, 3.0], [2.0, 3.0, 0.5]], "dim": 1})


def test_user_jax_reproducer_moves_the_class_axis_and_prints_the_measured_y():
    sys.modules.setdefault("test_jax_reproducer", sys.modules[__name__])
    u = UserSubject("cross_entropy", "tests/meta/test_jax_reproducer.py:per_example_ce", "jax", per_example_ce,
                    accepted_parameters(per_example_ce), class_axis=-1, returns="per-example")
    (case,) = [c for c in cases.user_cases(u, False) if c.fmt == "float32" and c.device == "cpu"]
    kw = cases.restrict(case, {"input": [[[0.0, 1.0], [2.0, -1.0], [0.5, 0.25]]], "target": [[2, 0]]})
    _check(case, kw)
