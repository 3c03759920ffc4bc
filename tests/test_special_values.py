"""The special-value table (tests/meta/test_special_values.py: IDs such as ``cross_entropy(target logit = -inf)
-> inf``) held against each subject.

Rows with finite inputs and -inf masks in the softmax family are held to the pass line; rows with other
infinities or NaN are checked against the oracle's extended-real semantics and reported (an expected failure
with the values shown), gating only under --strict-specials. A documented deviation is accepted when the output
is the documented one. Every selected case is held to the table, a user's function included; a --quick run
holds only torch float32 and our NumPy float64 to it.
"""

from __future__ import annotations

import pytest

import conftest
import oracles
from lossproof import suite
from lossproof.measure import _flat, measure, passes
from subjects import deviations
from tests import cases
from tests.meta.test_special_values import CASES as TABLE
from tests.problems import finite_except_masks


def _subjects(config):
    if not config.getoption("--quick") or config.getoption("--subject"):
        return cases.selected(config)
    return ([c for c in suite.torch_cases(False) if c.fmt == "float32" and c.device == "cpu"]
            + [c for c in suite.numpy_cases() if c.fmt == "float64"])


def pytest_generate_tests(metafunc):
    if "special" in metafunc.fixturenames:
        params = []
        for case in _subjects(metafunc.config):
            for row_id, name, kwargs, _want in TABLE:
                if name == case.loss:
                    marks = [pytest.mark.skip(reason=case.skip)] if case.skip else []
                    params.append(pytest.param((case, row_id, kwargs), id=f"{case.id}: {row_id}", marks=marks))
        metafunc.parametrize("special", params)


def test_special_value(special, request):
    case, row_id, kwargs = special
    kw = cases.restrict(case, kwargs)
    if kw is None:
        pytest.skip(f"{case.subject} does not take a parameter this row needs: {sorted(kwargs)}")
    try:
        values, _ = case.call(kw)
    except suite.NotSupported as e:
        pytest.skip(f"not supported: {e}")
    except (ValueError, RuntimeError) as e:
        values = [f"raised {type(e).__name__}: {e}"]
    exact = [e.to(case.fmt) for e in _flat(oracles.REGISTRY[case.loss](**kw))]
    gating = finite_except_masks(case.loss, kw) or request.config.getoption("--strict-specials")
    m = None
    if len(values) == len(exact) and all(isinstance(y, float) for y in values):
        m = measure(case.subject, case.loss, case.fmt, case.device, kw, values, None)
        if passes(m.verdict):  # the special value itself, and finite ones held to the pass line
            conftest.record(m, None, gating)
            return
    # a documented deviation that explains the output (its documented oracle, output or error bound), shown in
    # the summary; without a measurement (the call raised) only a documented output can
    for d in deviations.matching(case.subject, case.loss, kw, case.fmt):
        if m is not None:
            ok = cases.explains(d, case, m, kw, values)[0]
        else:
            ok = d.documented_output is not None and all(
                isinstance(y, float) and d.documented_output(y) for y in values)
        if ok:
            if m is not None:
                conftest.record(m, d.id, gating)
            return
    if m is not None:
        conftest.record(m, None, gating)
    message = f"{case.id} {row_id}: got {values}, exact {exact}"
    if gating:
        pytest.fail(message)
    pytest.xfail(f"special value deviates (reported; gates under --strict-specials): {message}")
