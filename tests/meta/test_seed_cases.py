"""The seed notebook's six printed torch float32 results: each exact value pinned (30+ digits, and recomputed
from a direct high-precision formula), its correctly rounded float32, and how many ULP the printed value is
from the exact one. Inputs are the float32 values torch held (0.3, 0.7, 0.9 and 0.1 are not float32 values)."""

from __future__ import annotations

import mpmath
import pytest

import oracles
from lossproof.demo import SEED_CASES, round_inputs
from oracles.formats import format_ulps, ulp_error

# label -> (exact value to 36 digits, RN float32, ULP error of the printed value, 3 digits rounded up;
# e.g. BCEWithLogits: (1.9287e-22 - 9.6437e-23) / 2**-96 = 7,640,565.1 -> "7.65e+6")
PINS = {
    "BCELoss, incorrect outputs": ("1.20397276458950693185423725903557563", 1.2039728164672852, "0.436"),
    "BCELoss, correct outputs": ("0.105360529731145382656041975805538493", 0.10536053031682968, "0.0787"),
    "BCEWithLogitsLoss, incorrect": ("50.0000000000000000000001928749847964", 50.0, "5.06e-17"),
    "BCEWithLogitsLoss, correct": ("1.92874984796391778301715681272821153e-22", 1.9287498933537385e-22, "7.65e+6"),
    "CrossEntropyLoss, incorrect": ("1.56498137087428488749174262855823511", 1.5649813413619995, "0.248"),
    "CrossEntropyLoss, correct": ("0.000136190514938253628491155228951791343", 0.0001361905160592869, "3880"),
}


def direct(name, kw):
    """The same losses by their textbook formulas at 300 digits (a second, independent evaluation)."""
    f = mpmath.mpf
    with mpmath.workdps(300):
        if name == "binary_cross_entropy":
            terms = [-(f(y) * mpmath.log(f(p)) + (1 - f(y)) * mpmath.log(1 - f(p)))
                     for p, y in zip(kw["input"], kw["target"])]
        elif name == "binary_cross_entropy_with_logits":
            terms = [f(y) * mpmath.log(1 + mpmath.exp(-f(x))) + (1 - f(y)) * mpmath.log(1 + mpmath.exp(f(x)))
                     for x, y in zip(kw["input"], kw["target"])]
        else:
            terms = [mpmath.log(sum(mpmath.exp(f(v)) for v in row)) - f(row[t])
                     for row, t in zip(kw["input"], kw["target"])]
        return sum(terms) / len(terms)


@pytest.mark.parametrize("label,name,kwargs,printed", SEED_CASES, ids=[c[0] for c in SEED_CASES])
def test_seed_case(label, name, kwargs, printed):
    exact_text, rn, ulps = PINS[label]
    kw = round_inputs(kwargs, "float32")
    z = oracles.REGISTRY[name](**kw)
    assert str(z) == exact_text
    with mpmath.workdps(300):
        assert abs(direct(name, kw) - mpmath.mpf(exact_text)) <= mpmath.mpf(10) ** -34 * abs(mpmath.mpf(exact_text))
    assert z.to("float32") == rn
    assert format_ulps(ulp_error(printed, z.fraction(), "float32")) == ulps


def test_cross_entropy_seed_is_about_3900_ulp_away():
    """NUMERICS.md's example: torch's 1.3624693e-4 against the exact 1.3619051e-4, 3,877 ULP."""
    z = oracles.cross_entropy([[0.0, 0.0, 10.0, 0.0]], [2])
    e = ulp_error(0.00013624693383462727, z.fraction(), "float32")
    assert 3876 < e < 3878
    assert abs(z.kappa.to("float64") - 1.4e-3) < 0.05e-3
