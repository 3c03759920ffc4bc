"""Detection power of the battery, measured on the zoo (lossproof/zoo): realistic unstable implementations of the
NUMERICS.md mistakes list must each be caught, and sound controls must never be flagged.

- Every member is caught under the ci budgets (ci's example counts, as ``lossproof check``) by the property it
  states, in the format it states, and the minimal input reported fails again when re-checked alone (the reproducer
  is real). Members the suite does not catch yet carry their ``gap`` and are strict expected failures: closing the
  gap turns them into passes that must be acknowledged by removing the gap.
- Every control passes agreement under 10 different Hypothesis seeds (a few examples each: a false alarm shows
  on any example), the no-overflow property (ci's example count, as detect), and the special-value table.

Cost: each member runs one property in one format (one short Hypothesis search and a shrink capped at
SHRINK_SECONDS), the controls a few examples per seed; the whole file is timed in the final report of
tests/meta (see the README of the zoo's issue).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lossproof import detect, zoo
from lossproof.catalogue import NAMES as LOSSES

#: the shrink budget of a member's run: the minimal input is the smallest found in this time (lossproof/budget.py's
#: rule, shorter than ci's 10 s: a member's failure is found in well under a second and its shrink is the cost)
SHRINK_SECONDS = 3.0
#: controls: seeds, and examples per seed (the members run ci's own example counts, lossproof/profiles.py)
CONTROL_SEEDS = range(10)
CONTROL_EXAMPLES = 8


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def test_zoo_covers_every_mistake_category():
    """At least 30 members and 8 controls; every category of the mistakes list has several members, in both
    frameworks overall; names unique; each member states its mistake in one line and the property that catches it."""
    assert len(zoo.MEMBERS) >= 30 and len(zoo.CONTROLS) >= 8
    names = [m.name for m in zoo.MEMBERS + zoo.CONTROLS]
    assert len(names) == len(set(names))
    for cat in zoo.CATEGORIES:
        assert sum(1 for m in zoo.MEMBERS if m.category == cat) >= 2, cat
    assert {m.framework for m in zoo.MEMBERS} == {"torch", "numpy"}
    assert {m.framework for m in zoo.CONTROLS} == {"torch", "numpy"}
    for m in zoo.MEMBERS + zoo.CONTROLS:
        assert m.loss in LOSSES and m.fmt in ("float64", "float32", "float16", "bfloat16"), m.name
        assert m.mistake and len(m.mistake) < 240, m.name
        assert (m.prop in zoo.PROPERTIES) != m.is_control, m.name


@pytest.mark.parametrize("member", [m for m in zoo.MEMBERS + zoo.CONTROLS], ids=lambda m: m.name)
def test_targets_load_the_way_check_loads_them(member):
    """``lossproof check LOSS TARGET`` names each member by its file: that target loads the same function."""
    from subjects.user import load

    user = load(f"{member.loss}={member.target}", member.framework)
    assert user.fn.__name__ == member.fn.__name__ and user.fn.__doc__ == member.fn.__doc__


def _member_params():
    out = []
    for m in zoo.MEMBERS:
        marks = [pytest.mark.xfail(strict=True, reason=f"gap in the suite: {m.gap}")] if m.gap else []
        out.append(pytest.param(m, id=f"{m.name}-{m.fmt}-{m.prop}", marks=marks))
    return out


@pytest.mark.parametrize("member", _member_params())
def test_member_is_caught_by_its_property(member):
    o = detect.run_property(member, member.prop, shrink=SHRINK_SECONDS)
    assert o.caught, (f"{member.name} ({member.loss}, {member.framework}, {member.fmt}) passed {member.prop} "
                      f"({o.measured} examples measured): {member.mistake}")
    assert o.minimal is not None
    # the reported minimal input fails again on its own
    assert detect.fails_on(detect.case_for(member), member.prop, o.minimal), o.minimal
    print(f"{member.name}: {member.prop} in {o.seconds_to_failure:.2f} s, minimal {str(o.minimal)[:200]}")


@pytest.mark.parametrize("seed", CONTROL_SEEDS)
@pytest.mark.parametrize("control", zoo.CONTROLS, ids=lambda m: m.name)
def test_control_passes_agreement_under_seed(control, seed):
    # the edge problems do not depend on the seed: measured once, with the first
    o = detect.run_property(control, "agreement", seed=seed, examples=CONTROL_EXAMPLES, shrink=SHRINK_SECONDS,
                            edges=seed == CONTROL_SEEDS[0])
    assert not o.caught, f"false alarm on the control {control.name} (seed {seed}):\n{o.message}"
    assert o.measured > 0 or o.unsupported, "the control was never measured"


@pytest.mark.parametrize("control", zoo.CONTROLS, ids=lambda m: m.name)
def test_control_passes_no_overflow_and_special_values(control):
    for prop in ("no_overflow", "special_values"):  # ci's example count, as lossproof check and detect run it
        o = detect.run_property(control, prop, shrink=SHRINK_SECONDS)
        assert not o.caught, f"false alarm on the control {control.name} ({prop}):\n{o.message}"


def test_the_runner_can_fail_and_pass():
    """The machinery itself: the same runner flags a naive softplus and passes the careful one on the same draws
    (so a pass of the controls is not a runner that never fails)."""
    naive = zoo.by_name("softplus_log1p_exp")
    careful = zoo.by_name("careful_softplus")
    assert detect.run_property(naive, "agreement", shrink=1.0).caught
    assert not detect.run_property(careful, "agreement").caught
