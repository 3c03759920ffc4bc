"""What the seconds-valued budgets cost in real time (the claims tests/meta/test_budget.py and test_hunt.py made
with wall-clock assertions before issue 14 item 7; they now assert on counts under a fake clock).

    .venv/bin/python benchmarks/budget_speed.py [--hunt-budget 3.0]

Prints, on this machine under its current load:

- **alarm**: how long after its 0.2 s per-example cap an example of pure-Python work is interrupted
  (lossproof.budget.Budget.example; the old test allowed 2 s);
- **shrink**: the wall time of a Hypothesis run whose shrink budget (0.3 s) is spent, examples pausing 20 ms, and
  its ratio to the budget (the old test allowed 5 s: the shrinker must stop soon after the budget, not go on);
- **hunt**: ``lossproof.hunt.hunt`` on the naive and the careful softplus of the zoo with a budget of
  ``--hunt-budget`` s: the wall time, its ratio to the budget, the evaluations and what the worst input was (the
  old test used 3 s budgets and asserted the naive one broken, the careful one not, with over 20 evaluations).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def alarm(cap=0.2):
    from lossproof.budget import Budget, ExampleTooSlow

    b = Budget(search=10, shrink=10)
    b.per_example = cap
    t0 = time.perf_counter()
    try:
        with b.example():
            while True:
                sum(range(1000))
    except ExampleTooSlow:
        pass
    wall = time.perf_counter() - t0
    print(f"alarm:  cap {cap:g} s, interrupted after {wall:.3f} s ({wall / cap:.2f}x the cap)")
    return wall


def shrink(budget_s=0.3, pause=0.02):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from lossproof.budget import Budget

    budget = Budget(search=60, shrink=budget_s)
    seen = []

    @settings(max_examples=200, derandomize=True, database=None, deadline=None)
    @given(st.integers(0, 10**6))
    def check(n):
        budget.check(str(n))
        seen.append(n)
        time.sleep(pause)
        if n >= 1000:
            budget.fail(str(n), f"too big: {n}")

    t0 = time.perf_counter()
    try:
        budget.run(check)
    except AssertionError:
        pass
    wall = time.perf_counter() - t0
    print(f"shrink: budget {budget_s:g} s, {pause * 1000:g} ms examples: stopped ({budget.stopped}) after "
          f"{wall:.2f} s in all, {len(seen)} examples ({wall / budget_s:.1f}x the shrink budget)")
    return wall


def hunts(seconds):
    import numpy as np

    from lossproof import detect, hunt, zoo

    out = {}
    for name in ("softplus_log1p_exp", "careful_softplus"):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            r = hunt.hunt(detect.case_for(zoo.by_name(name)), budget=seconds, top=3)
            wall = time.perf_counter() - t0
        w = r["worst"][0] if r["worst"] else {}
        print(f"hunt:   {name}: budget {seconds:g} s, {wall:.2f} s wall ({wall / seconds:.2f}x), "
              f"{r['evaluations']} evaluations ({r['evaluations'] / wall:.0f}/s), worst element "
              f"{w.get('element_verdict', '-')} ({w.get('ulp', '-')} ULP)")
        out[name] = (wall, r)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hunt-budget", type=float, default=3.0, metavar="SECONDS")
    args = ap.parse_args(argv)
    alarm()
    shrink()
    hunts(args.hunt_budget)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
