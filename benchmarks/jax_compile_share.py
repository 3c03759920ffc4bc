"""Where a JAX battery cell's time goes: XLA compiling a new shape against everything else, in one run.

    .venv/bin/python benchmarks/jax_compile_share.py [-k EXPR] [--warm]

Runs the selected battery cells (default: JAX's float32 cells of the agreement, properties and corpus modules:
agreement, no overflow, the two KL identities, the corpus) in this process with empty caches, as a fresh clone
runs them: a new $LOSSPROOF_CACHE, which holds JAX's persistent compilation cache and lossproof's own oracle cache,
removed afterwards (``--warm``: the caches in $LOSSPROOF_CACHE or .lossproof-cache, as they are). It times every
call of JAX's compiler and of its persistent cache around the calls themselves, not by sampling: XLA compiles
outside the Python frames a sampling profiler such as py-spy attributes time to, which put "XLA's compilation
itself" at 3% of these cells (README, 2026-12-07) where the calls take about half of them. Prints the cells' wall
time, the compilations (count, seconds, share of the wall time, milliseconds each), and the persistent cache's
hits, misses and writes.

The timing wraps JAX's private ``jax._src.compiler.backend_compile_and_load`` and
``jax._src.compilation_cache.{get,put}_executable_and_time`` (jax 0.10): a JAX without them (or no JAX) is told
apart, with one line and exit 2, rather than measured as "no compilation".
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = "jax and float32 and not optax"
MODULES = ["tests/test_agreement.py", "tests/test_properties.py", "tests/test_corpus.py"]


def _hooks():
    """JAX's compiler and compilation-cache modules, checked to have the functions this script wraps."""
    from jax._src import compilation_cache as cc
    from jax._src import compiler

    for mod, name in ((compiler, "backend_compile_and_load"), (cc, "get_executable_and_time"),
                      (cc, "put_executable_and_time")):
        getattr(mod, name)  # AttributeError where this JAX has no such hook
    return compiler, cc


class Timer:
    """A pytest plugin that wraps JAX's compiler and persistent cache once JAX is importable."""

    def __init__(self):
        self.compiles: list[float] = []
        self.hits = self.misses = 0
        self.put_s = 0.0

    def pytest_configure(self, config):
        compiler, cc = _hooks()
        compile_fn, get_fn, put_fn = (compiler.backend_compile_and_load, cc.get_executable_and_time,
                                      cc.put_executable_and_time)

        def compile_timed(*a, **k):
            t = time.perf_counter()
            try:
                return compile_fn(*a, **k)
            finally:
                self.compiles.append(time.perf_counter() - t)

        def get_timed(*a, **k):
            got = get_fn(*a, **k)
            if got[0] is None:
                self.misses += 1
            else:
                self.hits += 1
            return got

        def put_timed(*a, **k):
            t = time.perf_counter()
            try:
                return put_fn(*a, **k)
            finally:
                self.put_s += time.perf_counter() - t

        compiler.backend_compile_and_load = compile_timed
        cc.get_executable_and_time = get_timed
        cc.put_executable_and_time = put_timed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default=DEFAULT, help=f"pytest's -k over the battery cells (default: {DEFAULT!r})")
    ap.add_argument("--warm", action="store_true", help="keep the compilation cache as it is")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    sys.path.insert(0, ROOT)
    try:
        _hooks()
    except (ImportError, AttributeError) as e:
        print(f"jax_compile_share: no JAX compiler hook to time ({e}); nothing measured", file=sys.stderr)
        return 2
    fresh = None if args.warm else tempfile.mkdtemp(prefix="lossproof-jax-share-")
    if fresh is not None:
        os.environ["LOSSPROOF_CACHE"] = fresh
    import pytest

    timer = Timer()
    t0 = time.perf_counter()
    try:
        code = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly", *MODULES,
                            "-k", args.k], plugins=[timer])
        wall = time.perf_counter() - t0
    finally:
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
    if code not in (0, 1):
        print(f"jax_compile_share: pytest exited {code}; nothing measured", file=sys.stderr)
        return 2
    n, secs = len(timer.compiles), sum(timer.compiles)
    if n == 0:
        print("jax_compile_share: no JAX compilation ran (JAX absent, or every shape cached): nothing measured",
              file=sys.stderr)
        return 2
    caches = "warm caches" if args.warm else "empty caches"
    print(f"\ncells {args.k!r}, {caches}: {wall:.1f} s wall, pytest's start and collection included")
    print(f"XLA compilations: {n}, {secs:.1f} s = {100 * secs / wall:.0f}% of the wall time, "
          f"{1000 * secs / n:.0f} ms each (median {1000 * sorted(timer.compiles)[n // 2]:.0f} ms)")
    print(f"persistent cache: {timer.hits} hits, {timer.misses} misses, writes {timer.put_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
