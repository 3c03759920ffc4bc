"""How a battery test ends once its search has passed: measured enough, or said why not."""

from __future__ import annotations

import pytest

from lossproof import profiles


def conclude(run, case, notice):
    """A passing run that measured too little is never a silent pass. A user's function ends inconclusive (a skip
    whose reason starts "inconclusive:"; exit 3 of ``lossproof check``), even where it raised on every example (a
    format it does not support is left out with --dtype, not passed); a library's cell that measured nothing is
    skipped as not supported, one whose drawn examples mostly did not reach the comparison fails (issue 14: no
    vacuous property; lossproof.profiles.MIN_REACHED_SHARE), and one that measured too little of those it applied
    to says so in the run's notices."""
    why = run.inconclusive()
    if case.is_user:
        if why:
            pytest.skip(why)
        return
    if run.state["measured"] == 0 and run.state["unsupported"]:
        pytest.skip(f"not supported: {run.state['unsupported']}")
    under = run.under_reach()
    if under and why == under:  # of those it applied to it measured enough: the draws did not apply
        pytest.fail(f"{case.id} ({run.prop}): {under.removeprefix('inconclusive: ')}", pytrace=False)
    if why:
        notice(f"{case.id} ({run.prop}): {why}")


_RANK = {"drawn": 0, "applied": 1, "reached": 2}


class Reach:
    """Per distinct drawn example, how far it went: drawn, applied (the property applies to it: the subject was
    called) or reached (its comparison with the exact result was made); Hypothesis's replays of one draw count
    once. The identities' count, as ``Search.counts`` is the searched properties' (issue 14: no vacuous
    property)."""

    def __init__(self, prop: str, cell: str):
        self.prop, self.cell = prop, cell
        self.how: dict = {}
        self.key = None
        self.first_refusal: str | None = None  # the subject's first NotSupported: shown, never silent

    def refused(self, e) -> None:
        self.first_refusal = self.first_refusal or str(e).splitlines()[0]

    def drawn(self, kwargs) -> None:
        self.key = hash(repr(kwargs))
        self.how.setdefault(self.key, "drawn")

    def mark(self, stage: str) -> None:
        if _RANK[stage] > _RANK[self.how[self.key]]:
            self.how[self.key] = stage

    def counts(self) -> dict:
        return {"drawn": len(self.how), "applied": sum(_RANK[v] >= 1 for v in self.how.values()),
                "reached": sum(v == "reached" for v in self.how.values())}

    def conclude(self, record_property) -> None:
        """Record the counts (the summary prints them) and fail, in one line, when fewer of the drawn examples than
        the property's share reached the comparison: a pass that compared almost nothing is no pass."""
        c, share = self.counts(), profiles.min_reached_share(self.prop)
        record_property("lossproof_reach", (self.prop, self.cell, c["drawn"], c["applied"], c["reached"], share))
        if c["reached"] < share * c["drawn"] or not c["reached"]:
            pytest.fail(f"{self.cell} ({self.prop}): {c['reached']} of the {c['drawn']} examples drawn reached the "
                        f"comparison (at least {share:.0%} needed; {c['applied']} applied"
                        + (f"; first refusal: {self.first_refusal}" if self.first_refusal else "") + ")",
                        pytrace=False)
