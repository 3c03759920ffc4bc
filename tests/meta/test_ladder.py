"""The verdict ladder is monotone (docs/NUMERICS.md, "Verdicts"): accurate requires stable, so a large condition
number never lifts a result over the stable bound."""

from __future__ import annotations

import math

from lossproof.measure import measure


def test_a_result_off_by_log_c_at_a_large_offset_is_unstable_not_accurate():
    # 3,521 equal float32 logits at 2**30: z = log 3521 = 8.1665; optax 0.2.8 returns 0 there. u * kappa ~ 128
    # nats, so the accurate allowance alone would pass it
    kw = {"input": [[2.0 ** 30] * 3521], "target": [0]}
    m = measure("user", "cross_entropy", "float32", "cpu", kw, [0.0], None)
    w = m.worst_element
    assert w.accurate_bound > abs(math.log(3521)), "the example no longer exercises the hole the ladder closed"
    assert m.verdict == "unstable", m.verdict


def test_the_right_answer_there_is_correctly_rounded():
    kw = {"input": [[2.0 ** 30] * 3521], "target": [0]}
    m = measure("user", "cross_entropy", "float32", "cpu", kw, [8.166500091552734], None)
    assert m.verdict in ("correctly_rounded", "accurate"), m.verdict
