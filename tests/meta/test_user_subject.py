"""How a user's function is called: torch's keyword names, or positionally for a function whose parameters are
named otherwise (scipy.special.log_softmax(x, axis)); found by checking SciPy's function as a user would (every
cell was inconclusive: the input was dropped as a parameter the function does not take)."""

from __future__ import annotations

import numpy as np
import scipy.special

from subjects.user import UserSubject, accepted_parameters, adapt


def test_a_first_parameter_named_otherwise_takes_the_input():
    params = accepted_parameters(scipy.special.log_softmax)
    assert "input" in params and "axis" in params and "target" not in params
    fn = adapt(UserSubject("log_softmax", "scipy.special:log_softmax", "numpy", scipy.special.log_softmax, params))
    out = fn(input=np.array([0.0, 0.0]))
    assert np.allclose(out, np.log([0.5, 0.5]))


def test_a_required_second_parameter_takes_the_target():
    def loss(logits, labels, reduction="mean"):
        return logits, labels, reduction

    params = accepted_parameters(loss)
    assert {"input", "target", "reduction"} <= params
    fn = adapt(UserSubject("cross_entropy", "t:loss", "torch", loss, params))
    assert fn(input=1, target=2, reduction="sum") == (1, 2, "sum")


def test_torch_names_are_kept_as_they_are():
    def loss(input, target, weight=None):
        return input

    assert accepted_parameters(loss) == frozenset({"input", "target", "weight"})
