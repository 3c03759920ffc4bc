"""Where the README test command's time goes: its wall time and core-seconds, by module and by subject.

    .venv/bin/python benchmarks/test_command_time.py [--save OUT]  # runs the test command, empty caches (~7 min)
    .venv/bin/python benchmarks/test_command_time.py FILE       # reads the output of a run of your own

Runs ``python -m pytest -n auto --durations=0 -q -p no:cacheprovider`` from the repository root as a fresh clone
runs it: a new $LOSSPROOF_CACHE (lossproof's oracle cache and JAX's compilation cache), removed afterwards. Or reads
FILE, the output of any pytest run with ``--durations=0``. Prints the wall time (when it ran the command), the
tests' core-seconds (setup, call and teardown summed over the workers), the battery (tests/test_*.py) against
the meta-tests (tests/meta), the modules by core-seconds, the battery's subjects (torch, jax, optax, numpy,
scipy, ...) per module, and the slowest tests. The README's Speed section cites it. Every line of durations it
cannot read is counted and reported; a file with none is an error (exit 2), never an empty table.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = [sys.executable, "-m", "pytest", "-n", "auto", "--durations=0", "-q", "-p", "no:cacheprovider"]
_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)s (call|setup|teardown)\s+(\S+)")
#: the battery's ids start with the subject ([torch-cross_entropy-float32-cpu], [optax-safe-...]); the sweeps' with
#: the function, not a subject
_SUBJECT = re.compile(r"\[(torch|jax|optax-safe|optax|numpy|scipy|user|ours)-")


def durations(text: str) -> list[tuple[float, str]]:
    """(seconds, node id) of every setup, call and teardown line of pytest's --durations=0 report."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            out.append((float(m.group(1)), m.group(3)))
    return out


def table(rows: list[tuple[float, str]], wall: float | None) -> str:
    total = sum(t for t, _ in rows)
    by_module: collections.Counter = collections.Counter()
    by_subject: collections.Counter = collections.Counter()
    by_test: collections.Counter = collections.Counter()
    kind: collections.Counter = collections.Counter()
    for t, nid in rows:
        module = nid.split("::")[0]
        by_module[module] += t
        by_test[nid] += t
        meta = "/meta/" in module
        kind["meta-tests (tests/meta)" if meta else "battery (tests/test_*.py)"] += t
        m = _SUBJECT.search(nid)
        if not meta and m:
            by_subject[(os.path.basename(module), m.group(1))] += t
    lines = []
    if wall is not None:
        lines.append(f"wall time {wall:.0f} s ({int(wall // 60)} min {wall % 60:.0f} s)")
    lines.append(f"tests: {total:.0f} core-s" + (f" ({total / wall:.2f} cores busy on average)" if wall else ""))
    for k, v in kind.most_common():
        lines.append(f"  {k:<28} {v:7.1f} core-s  {100 * v / total:4.1f}%")
    lines.append("modules:")
    for k, v in by_module.most_common(20):
        lines.append(f"  {v:7.1f}  {k}")
    lines.append("the battery by module and subject:")
    for (mod, subj), v in by_subject.most_common(20):
        lines.append(f"  {v:7.1f}  {mod} {subj}")
    jax_like = sum(v for (_, subj), v in by_subject.items() if subj in ("jax", "optax", "optax-safe"))
    lines.append(f"  JAX and optax cells together: {jax_like:.1f} core-s ({100 * jax_like / total:.1f}% of the tests)")
    lines.append("slowest tests:")
    for k, v in by_test.most_common(10):
        lines.append(f"  {v:6.1f}  {k}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", help="the output of a pytest run with --durations=0 (default: run one)")
    ap.add_argument("--save", metavar="PATH", help="also write the run's pytest output there (to read again later)")
    args = ap.parse_args(argv)
    wall = None
    if args.file:
        try:
            with open(args.file, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError as e:
            print(f"test_command_time: cannot read {args.file}: {e.strerror}", file=sys.stderr)
            return 2
    else:
        cache = tempfile.mkdtemp(prefix="lossproof-cache-")
        try:
            t0 = time.perf_counter()
            p = subprocess.run(COMMAND, cwd=ROOT, env={**os.environ, "LOSSPROOF_CACHE": cache},
                               capture_output=True, text=True)
            wall = time.perf_counter() - t0
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        text = p.stdout + p.stderr
        if args.save:
            with open(args.save, "w", encoding="utf-8") as fh:
                fh.write(text)
        summary = [ln for ln in text.splitlines() if re.search(r"\d+ passed", ln)]
        print(f"{' '.join(COMMAND[1:])}: exit {p.returncode}; {summary[-1].strip('= ') if summary else 'no summary'}")
    rows = durations(text)
    if not rows:
        print("test_command_time: no --durations=0 lines found (run pytest with --durations=0)", file=sys.stderr)
        return 2
    print(table(rows, wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
