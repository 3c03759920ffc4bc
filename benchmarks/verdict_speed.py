"""The cost of measuring: ``lossproof.measure.measure`` on torch's results (values and gradients) of log_softmax,
cross_entropy (reduction "none") and softplus, 4 x 500 logits / 2,000 inputs, float32 and float64: each call's best
of three, in microseconds per compared number, and a digest of every verdict and ULP error (two code versions that
measure alike print the same digest).

    .venv/bin/python benchmarks/verdict_speed.py                    # this checkout
    .venv/bin/python benchmarks/verdict_speed.py --against HEAD~1   # side by side with a commit, alternating runs

``--against REF`` checks REF out in a temporary git worktree and runs this script there and here in turn (``--runs``
pairs, 4 by default), each in a fresh process, so both versions share the machine's state; it prints each run's
total and the ratio of the medians. Run from the repository root.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cases():
    import numpy as np
    import torch

    rng = np.random.default_rng(1)
    out = []
    for fmt, td in (("float32", torch.float32), ("float64", torch.float64)):
        x = (rng.standard_normal((4, 500)) * 5).astype(np.float32).astype(np.float64)
        t = torch.tensor(x, dtype=td, requires_grad=True)
        y = torch.log_softmax(t, 1)
        y.sum().backward()
        out.append(("log_softmax", fmt, {"input": x.tolist(), "dim": 1}, y.detach().reshape(-1).tolist(),
                    t.grad.reshape(-1).tolist()))
        tgt = rng.integers(0, 500, 4).tolist()
        t = torch.tensor(x, dtype=td, requires_grad=True)
        y = torch.nn.functional.cross_entropy(t, torch.tensor(tgt), reduction="none")
        y.sum().backward()
        out.append(("cross_entropy", fmt, {"input": x.tolist(), "target": tgt, "reduction": "none"},
                    y.detach().reshape(-1).tolist(), t.grad.reshape(-1).tolist()))
        xs = (rng.standard_normal(2000) * 20).astype(np.float32).astype(np.float64)
        t = torch.tensor(xs, dtype=td, requires_grad=True)
        y = torch.nn.functional.softplus(t)
        y.sum().backward()
        out.append(("softplus", fmt, {"input": xs.tolist()}, y.detach().tolist(), t.grad.tolist()))
    return out


def run_here() -> float:
    """Measure every case (best of three each); print a line per case and the digest; return the total (ms)."""
    sys.path.insert(0, os.getcwd())  # this checkout's lossproof and oracles, not an installed one
    from lossproof.measure import measure

    total, digest = 0.0, []
    for name, fmt, kw, yv, yg in _cases():
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            m = measure("torch", name, fmt, "cpu", kw, yv, yg)
            best = min(best, time.perf_counter() - t0)
        n = len(m.elements)
        total += best * 1e3
        digest.append((name, fmt, [(e.verdict, e.ulp_error) for e in m.elements]))
        print(f"  {name:14s} {fmt:8s} {n:5d} numbers {best * 1e3:7.1f} ms {best / n * 1e6:5.1f} us/number")
    print(f"  total {total:.1f} ms, digest {hashlib.sha256(repr(digest).encode()).hexdigest()[:16]}")
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", metavar="REF", help="a git commit to compare with, side by side")
    ap.add_argument("--runs", type=int, default=4, help="alternating pairs of runs with --against (default 4)")
    ap.add_argument("--total-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    if not a.against:
        t = run_here()
        if a.total_only:
            print(f"TOTAL {t}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        wt = os.path.join(tmp, "ref")
        r = subprocess.run(["git", "worktree", "add", "--detach", "-q", wt, a.against], cwd=ROOT,
                           capture_output=True, text=True)
        if r.returncode:
            print(f"verdict_speed: cannot check out {a.against!r}: {r.stderr.strip().splitlines()[-1]}",
                  file=sys.stderr)
            return 2
        try:
            me = os.path.abspath(__file__)
            times: dict[str, list[float]] = {a.against: [], "this checkout": []}
            for i in range(a.runs):
                for label, cwd in ((a.against, wt), ("this checkout", ROOT)):
                    p = subprocess.run([sys.executable, me, "--total-only"], cwd=cwd, capture_output=True, text=True)
                    if p.returncode:
                        print(p.stdout + p.stderr, file=sys.stderr)
                        return 1
                    lines = p.stdout.splitlines()
                    times[label].append(float(lines[-1].split()[1]))
                    print(f"run {i + 1}, {label}:\n" + "\n".join(lines[:-1]))
            old, new = (statistics.median(v) for v in times.values())
            print(f"median total: {a.against} {old:.1f} ms, this checkout {new:.1f} ms: {new / old:.3f}x")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", wt], cwd=ROOT, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
