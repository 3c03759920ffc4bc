"""The recorder (lossproof/recorder.py) keeps what the run's summary table and results file need, not the
measurements themselves: a measurement holds its exact values, their sources and allowances, and a worker that kept
every one to the end of the run grew to 1.5 GB over 96 cells (measured)."""

from __future__ import annotations

import gc
import weakref

import oracles
from lossproof.measure import measure
from lossproof.recorder import Recorder, summary_lines


def _sigmoid(ys):
    return measure("torch", "sigmoid", "float32", "cpu", {"input": [1.0, -3.0]}, ys)


def test_the_summary_table_outlives_the_measurements_it_counts(tmp_path):
    exact = [e.to("float32") for e in oracles.codec.flat(oracles.sigmoid(input=[1.0, -3.0]))]
    rec = Recorder(str(tmp_path / "results.json"))
    right, wrong = _sigmoid(exact), _sigmoid([exact[0], 0.5])  # 0.5 for sigmoid(-3) = 0.047: unstable
    assert (right.verdict, wrong.verdict) == ("correctly_rounded", "unstable")
    worst_ulp = wrong.max_ulp
    rec.record(right, source="battery", prop="agreement", case_id="torch-sigmoid-float32-cpu")
    rec.record(wrong, source="battery", prop="agreement", case_id="torch-sigmoid-float32-cpu")
    rec.record(_sigmoid([exact[0], 0.5]), deviation="a-documented-deviation", source="battery",
               prop="agreement", case_id="torch-sigmoid-float32-cpu")
    refs = [weakref.ref(right), weakref.ref(wrong)]
    del right, wrong
    gc.collect()
    assert [r() for r in refs] == [None, None], "the recorder kept a measurement alive"

    # the unstable measurement gates; the one under a documented deviation is reported, not gating
    assert rec.summary_rows() == [(("sigmoid", "torch", "float32", "cpu"), "unstable", "unstable", worst_ulp, 3,
                                   ["a-documented-deviation"])]
    assert len(rec.records) == 3 and [r["verdict"] for r in rec.records] == ["correctly_rounded", "unstable",
                                                                             "unstable"]
    line = summary_lines(rec.summary_rows())[-1]
    assert line.split()[:7] == ["sigmoid", "torch", "float32", "cpu", "3", "unstable", "unstable"], line


def test_flat_is_row_major_over_nested_lists_and_tuples():
    """oracles.codec.flat, which every measurement and record reads its inputs through: the leaves in row-major
    order, at any depth, with empty lists, tuples and non-float leaves, as the plain recursive definition."""
    import random

    from oracles.codec import count, flat

    def reference(v):
        return [y for x in v for y in reference(x)] if isinstance(v, (list, tuple)) else [v]

    rng = random.Random(5)

    def tree(depth):
        if depth == 0 or rng.random() < 0.3:
            return rng.choice([0.5, -0.0, float("inf"), None, "s", 3])
        kids = [tree(depth - 1) for _ in range(rng.randint(0, 4))]
        return tuple(kids) if rng.random() < 0.2 else kids

    for _ in range(500):
        t = tree(4)
        assert flat(t) == reference(t) and count(t) == len(reference(t)), t
    assert flat([[1.0, 2.0], [3.0]]) == [1.0, 2.0, 3.0] and flat(7.0) == [7.0] and flat([[], ()]) == []
