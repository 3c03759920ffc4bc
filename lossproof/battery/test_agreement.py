"""Agreement with the oracle: one test per subject x loss x format x device, on Hypothesis-drawn extreme inputs.

The search is lossproof.search's (shared with ``lossproof check`` and ``lossproof detect``). Each example is
measured once (lossproof.measure): the verdict decides the test (pass line: stable; our NumPy losses must be
accurate), ``hypothesis.target`` climbs toward more bits of error, and the summary table at the end of the run
shows the worst verdict and ULP error of every cell. A documented deviation of a third-party library is measured
against the documented behaviour and reported, never skipped.
"""

from __future__ import annotations

from lossproof import search
from lossproof.battery.outcome import conclude


def test_agreement(lossproof_case, lossproof_record, lossproof_notice, lossproof_options, record_property,
                   lossproof_accept_used):
    case = lossproof_case
    run = search.search("agreement", case, strict=lossproof_options.strict_specials, record=lossproof_record,
                        strict_shared=lossproof_options.strict, accept=lossproof_options.accept)
    for capability, why in run.state["missing"].items():
        lossproof_notice(f"{case.id}: not supported: {capability} ({why})")
        record_property("lossproof_not_supported", f"{capability} ({why})")
    run.run_reporting(record_property, lossproof_accept_used)
    lossproof_notice(run.budget.report(case.id))
    conclude(run, case, lossproof_notice)

