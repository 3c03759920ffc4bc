"""How long the exhaustive sweeps take (lossproof/sweep.py): every float16 and bfloat16 row of every subject in this
process (the test command's cost), and the float32 throughput of the Dask path (a local cluster of ``--workers``
processes on a slice of ``--slice`` encodings around 1.0) with the full 2**32 extrapolated from it.

    .venv/bin/python benchmarks/sweep_speed.py [--workers 2] [--slice 0x4000000] [--no-dask]

Prints one line per row (seconds, the oracle's stages) and the float32 figures; the machine's load shows in them
(run it on an idle machine for figures to quote).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lossproof import sweep  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--slice", type=lambda s: int(s, 0), default=0x4000000, help="float32 encodings to sweep")
    p.add_argument("--chunk", type=lambda s: int(s, 0), default=2**22)
    p.add_argument("--functions", default=",".join(sweep.FUNCTIONS))
    p.add_argument("--no-dask", action="store_true")
    a = p.parse_args(argv)
    functions = a.functions.split(",")
    import torch

    torch.set_num_threads(1)
    sweep.sweep_range("sigmoid", "torch", "float16", 0, 16)  # imports and first calls out of the timings
    total = 0.0
    print(f"{'function':11} {'subject':7} {'format':9} {'seconds':>8}  oracle stages")
    for subject in sweep.SUBJECTS:
        for fmt in ("float16", "bfloat16"):
            for f in functions:
                t = time.perf_counter()
                row = sweep.sweep_range(f, subject, fmt, 0, sweep.size(fmt))
                dt = time.perf_counter() - t
                total += dt
                print(f"{f:11} {subject:7} {fmt:9} {dt:8.3f}  {row.get('reason') or row['oracle']}")
    print(f"all float16 and bfloat16 rows, one process: {total:.2f} s")
    if a.no_dask or sweep.dask_available():
        return 0
    lo = 0x3F800000 - a.slice // 2
    for f in functions:
        with tempfile.TemporaryDirectory() as folder:
            t = time.perf_counter()
            row = sweep.run_dask(f, "torch", "float32", lo, lo + a.slice, chunk=a.chunk, folder=folder,
                                 workers=a.workers)
            dt = time.perf_counter() - t
        rate = a.slice / dt
        print(f"torch {f} float32 on Dask, {a.workers} workers: {a.slice:,} inputs in {dt:.1f} s "
              f"({rate:,.0f} inputs/s, cluster start included): all 2**32 in about {2**32 / rate / 60:.0f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
