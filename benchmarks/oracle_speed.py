"""How fast is the exact oracle at LLM vocabulary sizes? One run, one table.

For each class count C and batch size N, on the same logits (normal, scale 3, exact bfloat16 values) and targets:
- torch:   torch.nn.functional.cross_entropy forward in float64 (mean reduction), best of several runs, with
           torch's default threads or one thread, whichever is faster;
- oracle:  oracles.cross_entropy(...).to(fmt) for bfloat16 and float32: the certified, correctly rounded mean
           (fast path, mpmath only where the fast bound cannot decide), input conversion included;
- mpmath:  the same call with the fast path disabled (oracles.fast.disabled()), the straightforward evaluation.
           Measured on the whole batch when it has at most MPMATH_DIRECT_ELEMENTS logits; otherwise measured on
           one row and multiplied by N (its cost is linear in N: one expression per row), marked "~".

First, the headline of issue 17, side by side in one run: cross_entropy of 4 x 128,256 logits (mean reduction),
torch's float64 forward on one thread against the certified oracle in float64 (double-double evaluation,
oracles/fast64.py), float32 and bfloat16, each as a ratio to torch (NumPy runs these passes on one thread).

Usage: .venv/bin/python benchmarks/oracle_speed.py [--quick] [--headline]
(--quick: N in {1, 16} and one mpmath row at most 32,000 classes; about a minute. --headline: the first table only.)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import oracles  # noqa: E402
from oracles import fast  # noqa: E402

CLASSES = (10, 1000, 32_000, 128_256)
MPMATH_DIRECT_ELEMENTS = 20_000


def best_of(fn, repeats, budget_s=2.0):
    """Minimum wall time of fn() over up to ``repeats`` runs (fewer when one run is slow), and its result."""
    times, out = [], None
    start = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    return min(times), out


def torch_time(xt, tt):
    """torch's float64 forward, the faster of its default thread count and one thread (on a busy machine a
    thread pool's barrier can cost milliseconds that are not the computation's)."""
    best = []
    for threads in sorted({torch.get_num_threads(), 1}, reverse=True):
        saved = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            torch.nn.functional.cross_entropy(xt, tt)  # warm up
            best.append(best_of(lambda: torch.nn.functional.cross_entropy(xt, tt), 30)[0])
        finally:
            torch.set_num_threads(saved)
    return min(best)


def torch_time_one_thread(xt, tt):
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.nn.functional.cross_entropy(xt, tt)  # warm up
        return best_of(lambda: torch.nn.functional.cross_entropy(xt, tt), 30)[0]
    finally:
        torch.set_num_threads(saved)


def headline(N=4, C=128_256):
    """Certified cross_entropy (mean) in float64, float32 and bfloat16 against torch's float64 forward, one
    thread each; each oracle time includes building the Exact and rounding it (fresh call each run)."""
    x, t = data(N, C)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    oracle_call(x[:1, :64], t[:1] % 64, "float64")  # one-time set-up (the dd exp table) outside the timing
    t_torch = torch_time_one_thread(xt, tt)
    print(f"certified cross_entropy, {N} x {C:,} logits (3 * N(0, 1) rounded to bfloat16), mean reduction; "
          "torch float64 forward and NumPy on one thread each")
    head = f"{'format':>9} | {'oracle':>10} | {'torch f64':>10} | {'x torch':>8} | {'fallbk':>6}"
    print(head)
    print("-" * len(head))
    z = torch.nn.functional.cross_entropy(xt, tt).item()
    for fmt in ("float64", "float32", "bfloat16"):
        t_or, (v, fb) = best_of(lambda: oracle_call(x, t, fmt), 7, budget_s=10)
        assert abs(v - z) <= (2.0**-8 if fmt == "bfloat16" else 1e-5) * abs(z), (v, z)  # a sanity check
        print(f"{fmt:>9} | {fmt_time(t_or):>10} | {fmt_time(t_torch):>10} | {t_or / t_torch:>7.1f}x | {fb:>6}")
        sys.stdout.flush()
    exp_line(x)
    print()


def exp_line(x):
    """The float32 and bfloat16 paths make one pass of NumPy's float64 exp over the logits (oracles/fast.py
    _Rows) and torch's forward one of its own exp: how the two compare on this machine bounds the ratios above.
    NumPy vectorises float64 exp only where the CPU has AVX-512 (its SVML kernels, built for AVX512_SKX), torch
    (SLEEF) with AVX2 already: on an AVX2-only CPU the certified float32 path cannot come near torch's forward.
    One thread each, the same array, best of several runs."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        xt = torch.from_numpy(x)
        t_np = best_of(lambda: np.exp(x), 30)[0]
        t_torch = best_of(lambda: torch.exp(xt), 30)[0]
    finally:
        torch.set_num_threads(saved)
    simd = "?"
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
        simd = "AVX-512 (X86_V4)" if features.get("AVX512_SKX") else "no AVX-512"
    except ImportError:  # a NumPy that does not expose its CPU features
        pass
    print(f"float64 exp of the same {x.size:,} logits, one thread: NumPy {fmt_time(t_np)}, torch "
          f"{fmt_time(t_torch)} ({t_np / t_torch:.1f}x; NumPy's SIMD on this CPU: {simd})")


def data(N, C, seed=0):
    rng = np.random.default_rng(seed)
    x = fast.round_array(rng.standard_normal((N, C)) * 3.0, "bfloat16")
    t = rng.integers(0, C, N)
    return x, t


def oracle_call(x, t, fmt):
    with fast.counting() as c:
        v = oracles.cross_entropy(x, t.tolist()).to(fmt)
    return v, c["fallback"]


def mpmath_call(x, t, fmt):
    with fast.disabled():
        return oracles.cross_entropy(x.tolist(), t.tolist()).to(fmt)


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller batches, mpmath measured up to 32,000 classes")
    ap.add_argument("--headline", action="store_true", help="only the float64 / float32 / bfloat16 headline")
    args = ap.parse_args(argv)
    batches = (1, 16) if args.quick else (1, 16, 256)
    print(f"lossproof oracle speed: python {platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), numpy {np.__version__}, {os.cpu_count()} CPUs\n")
    headline()
    if args.headline:
        return
    print("cross_entropy, mean reduction, logits ~ 3 * N(0, 1) rounded to bfloat16; times are wall clock\n")
    head = (f"{'C':>7} {'N':>4} | {'torch f64':>10} | {'oracle bf16':>11} {'x torch':>8} | {'oracle f32':>10} "
            f"{'x torch':>8} | {'fallbk':>6} | {'mpmath':>10} {'x oracle':>9}")
    print(head)
    print("-" * len(head))
    mpmath_row = {}  # C -> seconds for one row (mpmath)
    for C in CLASSES:
        for N in batches:
            x, t = data(N, C)
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)
            t_torch = torch_time(xt, tt)
            t_bf16, (v_bf16, fb1) = best_of(lambda: oracle_call(x, t, "bfloat16"), 5, budget_s=5)
            t_f32, (v_f32, fb2) = best_of(lambda: oracle_call(x, t, "float32"), 5, budget_s=5)
            z = torch.nn.functional.cross_entropy(xt, tt).item()
            assert abs(v_f32 - z) <= 1e-5 * abs(z), (v_f32, z)  # a sanity check of the setup, not a verdict
            mp, mark = None, " "
            if N * C <= MPMATH_DIRECT_ELEMENTS:
                mp, _ = best_of(lambda: mpmath_call(x, t, "bfloat16"), 1)
            elif not args.quick or C <= 32_000:
                if C not in mpmath_row:
                    x1, t1 = data(1, C, seed=1)
                    mpmath_row[C], _ = best_of(lambda: mpmath_call(x1, t1, "bfloat16"), 1)
                mp, mark = mpmath_row[C] * N, "~"
            ratio = f"{mp / t_bf16:9.0f}" if mp is not None else f"{'-':>9}"
            print(f"{C:>7} {N:>4} | {fmt_time(t_torch):>10} | {fmt_time(t_bf16):>11} {t_bf16 / t_torch:>7.1f}x | "
                  f"{fmt_time(t_f32):>10} {t_f32 / t_torch:>7.1f}x | {fb1 + fb2:>6} | {mark}{fmt_time(mp):>9} "
                  f"{ratio}x")
            sys.stdout.flush()
    print("\nx torch: oracle time / torch float64 forward time; x oracle: mpmath time / oracle (bfloat16) time;")
    print("fallbk: roundings (bfloat16 + float32) the fast bound left to mpmath; ~: one mpmath row times N.")


if __name__ == "__main__":
    main()
