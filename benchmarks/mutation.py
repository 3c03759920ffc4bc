"""Mutation testing of lossproof's judgement code: does some test fail when the code that decides a verdict is
wrong? Each mutation below is a small, plausible mistake in the judgement (a verdict rule, a bound, the gate's
rules, the requirement on our NumPy losses). The script copies the repository's tracked files into a temporary
directory, applies one mutation at a time there, runs the tests that should notice it (the checkout on
PYTHONPATH, so the copy's modules are the ones imported), and reports each mutation as killed (a test failed) or
survived. Nothing in the checkout is modified.

    .venv/bin/python benchmarks/mutation.py              # every mutation (about 5 minutes on 2 cores)
    .venv/bin/python benchmarks/mutation.py --list
    .venv/bin/python benchmarks/mutation.py worst-inverted gate-unstable-to-broken

Exit 0 when every mutation is killed, 1 when one survives (a gap in the tests: name it in an issue or close it).
This is the judgement's own mutation run (tox -e mutation); a general tool such as mutmut mutates every line and
takes hours here, since each run of the battery measures against the exact oracle.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple  # the tests that should notice it
    why: str


MUTATIONS = [
    # issue 14 item 1: a deviation excuses only its scope, per element
    Mutation("deviation-scope-ignored", "lossproof/judge.py",
             "    return s is deviations.ALL or e.index[0] in s\n", "    return True\n",
             ("tests/meta/test_deviation_scope.py",),
             "a deviation excuses elements (or the gradient) it does not describe"),
    Mutation("bcel-bound-total", "subjects/deviations.py",
             "    if not _reduced(kw):\n        return b(index)\n",
             "    if not _reduced(kw):\n        return sum((b(i) for i in range(len(x))), F(0))\n",
             ("tests/meta/test_deviation_scope.py",),
             "BCE-with-logits' bound summed over the elements, applied to each"),
    Mutation("overflow-deviation-not-scoped", "lossproof/judge.py",
             "if _overflow_explained(case, kw, _Out(\"value\", i, y, z), strict_shared, len(values)):",
             "if deviations.matching(case.subject, case.loss, kw, case.fmt):",
             ("tests/meta/test_deviation_scope.py",), "no overflow excused wherever any deviation matches the call"),
    Mutation("worst-inverted", "lossproof/measure.py",
             "return min(self.elements, key=lambda e: (RANK[e.verdict], -e.ulp_error))",
             "return max(self.elements, key=lambda e: (RANK[e.verdict], -e.ulp_error))",
             ("tests/meta/test_judgement.py",), "the worst element is the best one: reports name the wrong number"),
    Mutation("ladder-not-monotone", "lossproof/measure.py",
             "if e <= accurate_allow and e <= stable_allow:", "if e <= accurate_allow:",
             ("tests/meta/test_ladder.py",), "accurate without stable (the hole NUMERICS closed)"),
    Mutation("gate-unstable-to-broken", "reports/gate.py",
             "if old is None or RANK[v] < RANK.get(old, 99):", "if old is None:",
             ("tests/meta/test_judgement.py", "tests/meta/test_gate_environments.py"),
             "a case that fails worse (unstable to broken) is no regression"),
    Mutation("reduction-bound-linear", "oracles/bounds.py", "    L = ceil_log2(n)\n", "    L = n\n",
             ("tests/meta/test_judgement.py",), "the summation term grows as n instead of log2 n: far too loose"),
    Mutation("numpy-only-stable", "lossproof/judge.py",
             'return "accurate" if case.subject == "numpy" else "stable"', 'return "stable"',
             ("tests/meta/test_judgement.py",), "our NumPy losses held to stable only"),
    Mutation("element-bound-4x", "oracles/bounds.py",
             "return f.u * s * (z_abs + unit) + s * Fraction(f.min_subnormal) / 2",
             "return 4 * f.u * s * (z_abs + unit) + s * Fraction(f.min_subnormal) / 2",
             ("tests/meta/test_judgement.py",), "the stable bound four times too wide"),
    Mutation("undecided-called-correct", "lossproof/measure.py",
             "if y == zr and same_zero_sign and decided:", "if y == zr and same_zero_sign:",
             ("tests/meta/test_measure_undecided.py",), "a guessed rounding called correctly rounded"),
    Mutation("shared-without-torch-failing", "lossproof/judge.py",
             "    if not m.failures():\n        return None\n", "",
             ("tests/meta/test_shared_with_torch.py::"
              "test_where_torch_meets_the_exact_value_under_a_deviation_condition_nothing_is_shared",),
             "a user's failure excused although torch is right there"),
]


def _copy(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        src = ROOT / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)


def run(mutation: Mutation, work: Path, timeout: float) -> tuple:
    """(killed?, seconds, the last lines of the test output)."""
    target = work / mutation.path
    original = target.read_text()
    if mutation.old not in original:
        raise SystemExit(f"mutation {mutation.name}: its text is no longer in {mutation.path} (update the list)")
    target.write_text(original.replace(mutation.old, mutation.new, 1))
    env = {**os.environ, "PYTHONPATH": str(work), "LOSSPROOF_CACHE": str(work / ".cache")}
    t = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                            "--lossproof-results", str(work / "out.json"), *mutation.tests],
                           cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        killed, tail = r.returncode != 0, (r.stdout + r.stderr).strip().splitlines()[-3:]
    except subprocess.TimeoutExpired:
        killed, tail = True, ["timed out (counted as killed: the mutation broke the run)"]
    finally:
        target.write_text(original)
    return killed, time.monotonic() - t, tail


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="mutations to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the mutations and exit")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per mutation (default 600)")
    args = p.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:30} {m.path:24} {m.why}")
        return 0
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        print(f"mutation.py: unknown mutation {sorted(unknown)[0]!r} (--list)", file=sys.stderr)
        return 2
    survived = 0
    with tempfile.TemporaryDirectory(prefix="lossproof-mutation-") as tmp:
        work = Path(tmp)
        _copy(work)
        probe = subprocess.run([sys.executable, "-c", "import lossproof; print(lossproof.__file__)"], cwd=work,
                               env={**os.environ, "PYTHONPATH": str(work)}, capture_output=True, text=True)
        if not probe.stdout.strip().startswith(str(work)):
            print(f"mutation.py: the copy's modules are not the ones imported ({probe.stdout.strip()})",
                  file=sys.stderr)
            return 2
        # the control: unmutated, every chosen test passes (else a kill would mean nothing)
        control = Mutation("control", chosen[0].path, "", "", tuple(sorted({t for m in chosen for t in m.tests})), "")
        failed, secs, tail = run(control, work, args.timeout)
        if failed:
            print("mutation.py: the tests fail without a mutation:\n  " + "\n  ".join(tail), file=sys.stderr)
            return 2
        print(f"control  (no mutation)                  {secs:6.1f} s  every test passes")
        for m in chosen:
            killed, secs, tail = run(m, work, args.timeout)
            survived += not killed
            print(f"{'killed  ' if killed else 'SURVIVED'} {m.name:30} {secs:6.1f} s  {m.why}")
            if not killed:
                print("         " + "\n         ".join(tail))
    print(f"{len(chosen) - survived} of {len(chosen)} mutations killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
