"""Per property, the share of drawn examples that reach the comparison with the exact result (issue 14 item 2):
drawn / applied / reached per property and cell, under the ci profile.

    .venv/bin/python benchmarks/property_reach.py                  # the issue's cells (about 3 min on 1 core)
    .venv/bin/python benchmarks/property_reach.py --formats float32,bfloat16 --losses all

Searched properties (agreement, no overflow) count through ``Search.counts``; the identities through their own
``Reach`` (lossproof/battery/outcome.py). A search that fails is counted as far as it went (marked FAIL).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from lossproof import catalogue, profiles, search
from lossproof.battery import test_properties as T
from lossproof.battery.outcome import Reach
from lossproof.cases import all_cases

#: the cells issue 14 names: no overflow of torch's logsumexp, softplus, BCE and BCE-with-logits, SciPy's kl_div
#: agreement
ISSUE = [("no_overflow", "torch", "logsumexp"), ("no_overflow", "torch", "softplus"),
         ("no_overflow", "torch", "binary_cross_entropy"),
         ("no_overflow", "torch", "binary_cross_entropy_with_logits"),
         ("agreement", "scipy", "kl_div"), ("agreement", "torch", "cross_entropy")]


def _line(prop, cell, c, note=""):
    share = c["reached"] / c["drawn"] if c["drawn"] else 0.0
    need = profiles.min_reached_share(prop)
    flag = "" if share >= need else "  UNDER"
    return (f"{prop:22} {cell:44} drawn {c['drawn']:4}  applied {c['applied']:4}  reached {c['reached']:4}  "
            f"{share:5.0%} (>= {need:.0%}){flag}{note}")


def searched(prop, case):
    run = search.search(prop, case)
    note = ""
    try:
        run.run()
    except (AssertionError, BaseExceptionGroup):
        note = "  FAIL"
    return run.counts(), note


def identities(cases, fmt):
    by = {}
    for c in cases:
        if c.fmt == fmt and c.device == "cpu" and not c.skip and c.subject in ("torch", "numpy"):
            by.setdefault(c.subject, {})[c.loss] = c
    for subject, group in by.items():
        cell = f"{subject}-{fmt}-cpu"
        for prop, fn, args in (("CE = NLL(log_softmax)", T.cross_entropy_is_nll_of_log_softmax,
                                (lambda *a, **k: None,)),
                               ("KL = CE - H", T.kl_is_cross_entropy_minus_entropy, ()),
                               ("KL = CE (one-hot)", T.kl_equals_cross_entropy_for_one_hot, ())):
            reach, note = Reach(prop, cell), ""
            try:
                fn(group, *args, reach)
            except (AssertionError, BaseExceptionGroup):
                note = "  FAIL"
            yield _line(prop, cell, reach.counts(), note)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default="float32,bfloat16")
    ap.add_argument("--losses", default=None, help="comma-separated, or all (default: the issue's cells)")
    ap.add_argument("--no-identities", action="store_true")
    a = ap.parse_args(argv)
    fmts = a.formats.split(",")
    bad = [f for f in fmts if f not in catalogue.FORMATS]
    if bad:
        print(f"property_reach: unknown format {bad[0]!r}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    # what the battery's pytest.ini filters: semantics tested on purpose, about which torch warns on every call
    warnings.filterwarnings("ignore", "Implicit dimension choice", UserWarning)
    warnings.filterwarnings("ignore", "reduction: 'mean' divides the total loss", UserWarning)
    with profiles.use("ci"):
        cases = [c for c in all_cases() if c.device == "cpu" and not c.skip and c.fmt in fmts]
        if a.losses is None:
            cells = [(p, c) for p, s, loss in ISSUE for c in cases if c.subject == s and c.loss == loss]
        else:
            names = catalogue.NAMES if a.losses == "all" else a.losses.split(",")
            cells = [(p, c) for c in cases if c.loss in names for p in ("agreement", "no_overflow")]
        for prop, case in cells:
            c, note = searched(prop, case)
            print(_line(prop, case.id, c, note), flush=True)
        if not a.no_identities:
            for fmt in fmts:
                for line in identities(cases, fmt):
                    print(line, flush=True)
    print(f"({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
