"""Run profiles, one table: how much a run searches and how long it may take, for every part of lossproof that asks.

``dev`` is fast feedback while editing; ``ci`` is the default (the README's test command, ``lossproof check``,
``lossproof detect``): deterministic, bounded by counts rather than seconds; ``thorough`` searches far more. The
profile is chosen by ``--lossproof-profile`` (the pytest plugin), the ``profile`` key of ``[tool.lossproof]``,
the ``LOSSPROOF_PROFILE`` environment variable, or else ``ci`` (``use`` sets it for a block, ``current`` reads it).

lossproof applies its profile to its own searches explicitly (``lossproof.search``): loading the plugin never
changes the Hypothesis profile of a user's test suite. This repository's own meta-tests use the Hypothesis
profiles ``register_hypothesis_profiles`` registers under the same names (conftest.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import os
from dataclasses import dataclass

from hypothesis import HealthCheck, settings

__all__ = ["Profile", "PROFILES", "current", "use", "get", "ENV", "register_hypothesis_profiles",
           "MIN_REACHED_SHARE", "min_reached_share", "derived"]

ENV = "LOSSPROOF_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    #: Hypothesis examples per agreement test (the battery's main search), per no-overflow test, per identity test
    agreement_examples: int
    overflow_examples: int
    identity_examples: int
    #: the search's work budget per test, in numbers compared with the oracle (values and gradient components):
    #: counting them instead of seconds keeps the search the same on any machine. ci: 50 examples and 6,000 numbers
    #: (one 4,096-class row with its gradient is 8,192: a long row ends the search), chosen by detection power
    #: (``lossproof detect --examples N --work W [--no-edges]``, the 49 zoo members, issue 17): with the edge
    #: problems every member is caught at 100/12,000, 50/6,000, 25/3,000 and 10/1,200 alike (median time to
    #: detection 0.12 to 0.29 s); the search alone catches 44 at 100/12,000 and 42 at each smaller budget. At
    #: 25/3,000 the search missed what 50 and 100 find: torch's documented float16 cancellation in
    #: binary_cross_entropy_with_logits (tests/meta/test_shared_with_torch.py, under --strict); 50/6,000 keeps it
    #: and costs the test command's battery about a third less than 100/12,000 (README, "Speed"). The thorough
    #: profile searches 2,000 examples or 500,000 numbers
    work: float
    #: in seconds: the shrink budget after the first failure, and two last resorts that fail the test loudly when
    #: hit (never skip silently: lossproof.budget): a search, one example's oracle work. ci: 300 s is 11 times the
    #: slowest battery test measured whole (torch cross_entropy bfloat16: 26-28 s on a 2-core machine busy with 5
    #: other test runs; its search alone, edges excluded, 8 s); one example's measurement past 300 s fails the
    #: test too: the slowest admitted examples timed by benchmarks/work_model.py took under 10 s on a loaded 2-core
    #: machine once judging a call stopped being O(n^2) (1d1269b), and 4 s beside six CPU hogs; one run with a
    #: load average of 10 (three concurrent test runs and a Dask sweep) still saw one past 120 s
    search_seconds: float
    shrink_seconds: float
    example_seconds: float
    #: one example's predicted oracle work cap, in bit-terms (lossproof.work: numbers x working precision bits,
    #: the oracle's cap 32,768 included); an example over it passes unmeasured, counted and listed, the same on
    #: every machine. ci 3e8 admits every ci draw (4,096 elements, with targets and weights about 8,200 numbers,
    #: times 1,000 + 32,768): a lower cap (5e7 was tried) skips examples the old 20 s cap measured, and a skipped
    #: example calls no ``target``, so the derandomized sequences change. What the prediction misses by far hits
    #: the wall-clock last resort, which fails the test (never skips: that would depend on the load). thorough 1e9
    example_work: float
    #: elements per drawn example and the share of draws with 1,024 classes or more
    max_elements: int
    large_share: float
    #: the share of a property test's examples that must reach the comparison for its pass to count (below it the
    #: test measured too little to mean anything: lossproof check exits 3, a battery test fails)
    min_measured_share: float
    #: this repository's meta-tests: Hypothesis examples of their own @given tests, the Arb cross-check's cases,
    #: the fast path's random rows, the large-vocabulary sizes
    meta_examples: int
    crosscheck_cases: int
    fast_rows: int
    vocab_sizes: tuple
    derandomize: bool


PROFILES = {
    "dev": Profile("dev", agreement_examples=20, overflow_examples=20, identity_examples=5, work=4_000,
                   search_seconds=120.0, shrink_seconds=5.0, example_seconds=60.0, example_work=1e8, max_elements=4096,
                   large_share=0.05, min_measured_share=0.5, meta_examples=25, crosscheck_cases=200,
                   fast_rows=10_000, vocab_sizes=(32_000,), derandomize=False),
    "ci": Profile("ci", agreement_examples=50, overflow_examples=50, identity_examples=12, work=6_000,
                  search_seconds=300.0, shrink_seconds=10.0, example_seconds=300.0, example_work=3e8, max_elements=4096,
                  large_share=0.05, min_measured_share=0.5, meta_examples=100, crosscheck_cases=1000,
                  fast_rows=10_000, vocab_sizes=(32_000,), derandomize=True),
    "thorough": Profile("thorough", agreement_examples=2000, overflow_examples=1000, identity_examples=200,
                        work=500_000, search_seconds=3600.0, shrink_seconds=300.0, example_seconds=1800.0,
                        example_work=1e9,
                        max_elements=20_000, large_share=0.2, min_measured_share=0.5, meta_examples=2000,
                        crosscheck_cases=100_000, fast_rows=100_000, vocab_sizes=(32_000, 128_256),
                        derandomize=False),
}

#: per property, the share of its drawn examples that must reach the comparison with the exact result for a pass
#: to count (issue 14: no vacuous property); below it a battery test fails, ``lossproof check`` is inconclusive
MIN_REACHED_SHARE = {
    # every draw applies but a log-space target for a function without log_target (kl_div only): half of kl_div's
    # draws at most; the rest is the function raising, already held to min_measured_share of those applied
    "agreement": 0.5,
    # the search draws finite inputs only (-inf masks aside: lossproof.search) and an example under a documented
    # deviation is measured against it, not dropped; what remains is the function raising, as for agreement
    "no_overflow": 0.5,
    # the identities draw what their comparison needs (2-D class inputs, finite logits, a representable
    # log_softmax): only the subject's refusals or an exact value the format cannot hold remain
    "CE = NLL(log_softmax)": 0.5,
    "KL = CE - H": 0.5,
    "KL = CE (one-hot)": 0.5,
    # one test per table row: it compares, or skips or fails with its reason (never passes without comparing),
    # so no share of a cell's rows is required; the summary lists a cell whose rows reached none
    "special values": 0.0,
}


def min_reached_share(prop: str) -> float:
    """The share of property ``prop``'s drawn examples that must reach its comparison (``MIN_REACHED_SHARE``)."""
    return MIN_REACHED_SHARE[prop]


_chosen: contextvars.ContextVar = contextvars.ContextVar("lossproof_profile", default=None)


def get(name: str) -> Profile:
    """The profile called ``name``; ValueError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}") from None


def current() -> Profile:
    """The profile in force: set by ``use`` (the plugin, the API, the command line), else $LOSSPROOF_PROFILE,
    else ci."""
    chosen = _chosen.get()
    if isinstance(chosen, Profile):
        return chosen
    return get(chosen or os.environ.get(ENV) or "ci")


def derived(base: str, *, examples: int | None = None, work: float | None = None) -> Profile:
    """Profile ``base`` with other search budgets: ``examples`` for both searched properties (agreement and no
    overflow), ``work`` numbers compared per test. ``lossproof detect --examples/--work`` measures detection power
    at budgets other than the profile's with it (how the ci budgets were chosen: README, "Speed")."""
    prof = get(base)
    if examples is not None and not (isinstance(examples, int) and examples >= 1):
        raise ValueError(f"examples must be a positive whole number, not {examples!r}")
    if work is not None and not (work > 0 and math.isfinite(work)):
        raise ValueError(f"work must be a positive finite number of compared numbers, not {work!r}")
    if examples is None and work is None:
        return prof
    changes: dict = {}
    if examples is not None:
        changes.update(agreement_examples=examples, overflow_examples=examples)
    if work is not None:
        changes["work"] = float(work)
    n, w = changes.get("agreement_examples", prof.agreement_examples), changes.get("work", prof.work)
    name = f"{base}[examples={n},work={w:g}]"
    return dataclasses.replace(prof, name=name, **changes)


def set_default(name: str | None) -> None:
    """Choose the profile for the rest of the process (the plugin, at configure time)."""
    if name is not None:
        get(name)
    _chosen.set(name)


@contextlib.contextmanager
def use(name: str | Profile | None):
    """Run a block under profile ``name`` (a Profile: one from ``derived``; None: leave it as it is)."""
    if name is None:
        yield current()
        return
    token = _chosen.set(name if isinstance(name, Profile) else get(name).name)
    try:
        yield current()
    finally:
        _chosen.reset(token)


def register_hypothesis_profiles() -> None:
    """Hypothesis profiles of the same names for a test suite's own @given tests (this repository's meta-tests):
    no deadline, derandomized under ci, failure blobs printed."""
    for p in PROFILES.values():
        settings.register_profile(p.name, max_examples=p.meta_examples, deadline=None, derandomize=p.derandomize,
                                  print_blob=p.name != "dev", suppress_health_check=[HealthCheck.too_slow])
