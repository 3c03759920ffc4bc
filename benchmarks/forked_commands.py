"""The meta-tests' ``lossproof check`` commands as fresh interpreters against forks of a server that imported torch
once (``tests/meta/forked_command.py``), side by side in one run.

    .venv/bin/python benchmarks/forked_commands.py [--repeat N]   # about a minute on 2 cores with N = 3

For each command (a passing check, a failing one shrunk to its minimal input, a usage error that imports the
user's module), N pairs alternate the two ways from the repository root, and the table prints the median wall
seconds of each, their ratio, and whether both gave the same exit status and output (a timing or a path printed
in the output is masked before comparing). The server is started before the first pair and its start-up (about
1.5 s, once per test worker) is printed on its own line. Bad arguments: one line, exit 2.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.meta import forked_command  # noqa: E402

COMMANDS = [
    ["check", "softplus", "examples/user_losses.py:careful_softplus", "--dtype", "float32"],
    ["check", "cross_entropy", "examples/user_losses.py:naive_cross_entropy", "--dtype", "float32"],
    ["check", "softplus", "examples/user_losses.py:nofn"],
]


def _masked(r) -> tuple:
    text = re.sub(r"\d+(\.\d+)? s\b", "_ s", r.stdout + r.stderr)
    return r.returncode, text


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"forked_commands.py: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv=None) -> int:
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="pairs per command (default 3)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        print("forked_commands.py: error: --repeat must be at least 1", file=sys.stderr)
        return 2
    t = time.perf_counter()
    if forked_command._server() is None:
        print("forked_commands.py: error: no os.fork here (the meta-tests run the real commands)", file=sys.stderr)
        return 2
    print(f"server start-up: {time.perf_counter() - t:.2f} s (once per test worker)")
    print(f"{'command':<72} {'fresh s':>8} {'forked s':>9} {'ratio':>7}  same answer")
    for cmd in COMMANDS:
        fresh, forked, same = [], [], True
        for _ in range(args.repeat):
            t = time.perf_counter()
            a = subprocess.run([sys.executable, "-m", "lossproof", *cmd], cwd=ROOT, capture_output=True, text=True,
                               timeout=600)
            fresh.append(time.perf_counter() - t)
            t = time.perf_counter()
            b = forked_command.run(cmd, cwd=ROOT, timeout=600)
            forked.append(time.perf_counter() - t)
            same = same and _masked(a) == _masked(b)
        f, k = statistics.median(fresh), statistics.median(forked)
        print(f"{' '.join(cmd)[:72]:<72} {f:8.2f} {k:9.2f} {k / f:6.2f}x  {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
