"""How well lossproof.work's prediction tracks the oracle's real cost: the calibration behind the per-example cap.

    .venv/bin/python benchmarks/work_model.py [--cells REGEX] [--props agreement,no_overflow] [--users]
                                             [--out FILE] [--limit SECONDS]

Runs the ci battery's searches (the derandomized sequences a CI run measures, edge problems included, no example
database) for the selected library cells (``--users``: also torch's own functions wrapped as a user's,
examples/torch_wrappers.py, as tests/meta/test_shared_with_torch.py checks them), times every example's
measurement (the oracle and the verdicts: what ``Budget.example`` guards) and prints, per loss and format, the
measured seconds per 10^8 predicted bit-terms (median and worst) and the slowest examples with their predictions.
The wall-clock last resort is raised to ``--limit`` (default 600 s) so that every admitted example is timed; the
predicted-work cap stays the profile's, so the sequences are the ones CI measures.

What the figures mean: the model is good where the worst ratio per path is within a small factor of the median
(the cap then bounds every admitted example's time on this machine by cap x worst ratio); a path whose worst ratio
is far above the rest is one the model underestimates (look at its slowest examples).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default=".", help="regular expression on the case id (default: every library cell)")
    ap.add_argument("--props", default="agreement,no_overflow")
    ap.add_argument("--users", action="store_true", help="also torch's functions wrapped as a user's")
    ap.add_argument("--no-library", action="store_true", help="only the wrapped user cells")
    ap.add_argument("--out", default=None, help="write every timed example as JSON here")
    ap.add_argument("--limit", type=float, default=600.0, help="the per-example wall-clock last resort (s)")
    a = ap.parse_args(argv)
    os.environ["LOSSPROOF_EXAMPLES_DIR"] = "off"
    warnings.filterwarnings("ignore")

    from lossproof import budget as budget_mod
    from lossproof import profiles
    from lossproof.cases import all_cases, user_cases
    from lossproof.search import search
    from subjects.user import load

    rows: list = []
    missed: list = []
    original_admit, original_example = budget_mod.Budget.admit, budget_mod.Budget.example

    def admit(self, kwargs):
        self._kwargs = kwargs
        self._predicted = original_admit(self, kwargs)
        return self._predicted

    import contextlib

    @contextlib.contextmanager
    def example(self):
        t0 = time.perf_counter()
        try:
            with original_example(self):
                yield
        finally:
            if self.overtime and not any(m["cell"] == self._cell_id for m in missed):  # its whole input
                from oracles.codec import hex_tree
                missed.append({"cell": self._cell_id, "predicted": self._predicted,
                               "kwargs": hex_tree(self._kwargs)})
        rows.append({"cell": self._cell_id, "loss": self.loss, "fmt": self.fmt,
                     "predicted": getattr(self, "_predicted", 0), "seconds": time.perf_counter() - t0,
                     "input": (self.current or "")[:160]})

    budget_mod.Budget.admit, budget_mod.Budget.example = admit, example
    cases = [] if a.no_library else [c for c in all_cases(("torch", "numpy", "scipy")) if c.device == "cpu"]
    if a.users or a.no_library:
        for loss in ("cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "log_softmax"):
            user = load(f"{loss}={os.path.join(ROOT, 'examples', 'torch_wrappers.py')}:{loss}", "torch")
            cases += [c for c in user_cases(user, False) if c.device == "cpu"]
    pattern = re.compile(a.cells)
    cases = [c for c in cases if pattern.search(c.id)]
    t_all = time.perf_counter()
    with profiles.use("ci"):
        for case in cases:
            for prop in a.props.split(","):
                b = budget_mod.Budget()
                b.per_example = a.limit
                b._cell_id = f"{prop} {case.id}"
                t0 = time.perf_counter()
                try:
                    search(prop, case, budget=b).run()
                    outcome = "pass"
                except AssertionError as e:
                    outcome = "fail: " + str(e).splitlines()[0][:80]
                except Exception as e:  # a refused property (no_overflow of an unreduced call): not timed
                    outcome = f"{type(e).__name__}"
                print(f"{time.perf_counter() - t0:7.1f} s  {b._cell_id}  {outcome}", flush=True)
                if b.overtime:  # past --limit (the test fails there: TimeLimitHit), untimed
                    print(f"         {b.overtime[:400]}", flush=True)
    for m in missed:
        rows.append({"cell": m["cell"], "loss": None, "fmt": None, "predicted": -1, "seconds": a.limit,
                     "input": "past the limit"})
    wall = time.perf_counter() - t_all
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"examples": rows, "past_the_limit": missed}, f)

    def per_gbt(r):
        return r["seconds"] / max(r["predicted"], 1) * 1e8

    print(f"\n{len(rows)} examples timed in {wall:.0f} s")
    print(f"{'loss':34} {'format':9} {'n':>5} {'max s':>7} {'median s/1e8':>13} {'worst s/1e8':>12} {'worst/med':>9}")
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["loss"], r["fmt"]), []).append(r)
    big = [r for r in rows if r["seconds"] >= 0.2]  # below, Python's overhead, not the oracle, dominates
    for (loss, fmt), rs in sorted(groups.items()):
        heavy = [r for r in rs if r["seconds"] >= 0.2]
        ratios = [per_gbt(r) for r in heavy]
        med = statistics.median(ratios) if ratios else 0.0
        worst = max(ratios, default=0.0)
        print(f"{loss:34} {fmt:9} {len(rs):5d} {max(r['seconds'] for r in rs):7.2f} {med:13.2f} {worst:12.2f} "
              f"{(worst / med if med else 0):9.1f}")
    if big:
        ratios = [per_gbt(r) for r in big]
        print(f"\nexamples over 0.2 s: {len(big)}; seconds per 1e8 predicted bit-terms: median "
              f"{statistics.median(ratios):.2f}, worst {max(ratios):.2f}")
    print("\nslowest examples:")
    for r in sorted(rows, key=lambda r: -r["seconds"])[:12]:
        print(f"  {r['seconds']:7.2f} s  predicted {r['predicted']:.3g}  ({per_gbt(r):.2f} s/1e8)  {r['cell']}  "
              f"{r['input'][:90]}")
    print("\nworst ratios (examples over 0.2 s):")
    for r in sorted(big, key=lambda r: -per_gbt(r))[:12]:
        print(f"  {per_gbt(r):7.2f} s/1e8  {r['seconds']:7.2f} s  predicted {r['predicted']:.3g}  {r['cell']}  "
              f"{r['input'][:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
