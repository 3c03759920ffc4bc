"""XLA's CPU emitters: what ``--xla_cpu_use_fusion_emitters=false`` would save JAX's battery cells, and what it
would change in the functions lossproof checks, side by side in one run.

    .venv/bin/python benchmarks/xla_emitters.py [--shapes N] [--rounds R]

JAX's battery cells spend about half their time in XLA compiling each new input shape with its gradient
(``benchmarks/jax_compile_share.py``). XLA's older CPU emitters compile faster; this script measures by how much
and whether JAX's functions still return the same bits with them. Each setting runs in a fresh process (XLA reads
its flags once) with an empty compilation cache, alternating default and older emitters ``--rounds`` times:

- compile: JAX's cross_entropy (optax's integer-label softmax cross-entropy, mean) with its gradient, as the JAX
  subject compiles it (``subjects/jax_subject._compiled``), over ``--shapes`` new float32 shapes: the median
  milliseconds to trace, lower and compile one;
- bits: every JAX function of the univariate and softmax families (jax.nn's sigmoid, log_sigmoid, softplus,
  log_softmax, softmax, logsumexp) in float64, float32, float16 and bfloat16, on 64 x 4,096 normal inputs at
  scales 1, 30 and 10,000, values and the gradient of sum(1.125 * output): a digest per function and format.

Prints the medians and their ratio, and every function and format whose bits differ between the settings. The
README's Speed section cites it (2026-12-07, jax 0.10.2, the AMD EPYC with AVX-512: 59 ms against 109 ms a shape,
0.54x; float16 log_sigmoid and softplus differ, so the older emitters were not taken: JAX would no longer be
checked as its users run it). Without JAX: one line, exit 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLDER = "--xla_cpu_use_fusion_emitters=false"


def _child(n_shapes: int) -> dict:
    """Runs in a fresh process with XLA_FLAGS set by the parent: compile times and bit digests, as a dict."""
    import time

    import ml_dtypes
    import numpy as np

    sys.path.insert(0, ROOT)
    from subjects import jax_subject

    jax, jnp, _ = jax_subject.modules()
    jax.config.update("jax_enable_x64", True)
    fns = jax_subject.functions()
    ce = fns["cross_entropy"][0]

    def forward(xi, t):
        return jnp.asarray(ce(input=xi, target=t, reduction="mean"))

    def with_gradient(xi, t, u):
        out, back = jax.vjp(lambda z: forward(z, t), xi)
        return out, back(u)[0]

    f = jax.jit(with_gradient)
    rng = np.random.default_rng(0)
    trace, lower, compile_ = [], [], []
    for k in range(n_shapes):
        r, c = 1 + k % 4, 3 + k  # every shape new
        x = rng.standard_normal((r, c)).astype(np.float32)
        t = (np.arange(r) % c).astype(np.int32)
        s0 = time.perf_counter()
        tr = f.trace(x, t, np.float32(1.0))
        s1 = time.perf_counter()
        lo = tr.lower()
        s2 = time.perf_counter()
        lo.compile()
        s3 = time.perf_counter()
        trace.append(s1 - s0)
        lower.append(s2 - s1)
        compile_.append(s3 - s2)

    digests = {}
    rng = np.random.default_rng(1)
    for fmt, dt in (("float64", np.float64), ("float32", np.float32), ("float16", np.float16),
                    ("bfloat16", ml_dtypes.bfloat16)):
        for name in ("sigmoid", "logsigmoid", "softplus", "log_softmax", "softmax", "logsumexp"):
            fn = fns[name][0]
            kw = {} if name in ("sigmoid", "logsigmoid", "softplus") else {"dim": 1}
            h = hashlib.sha256()
            for scale in (1.0, 30.0, 1e4):
                x = (rng.standard_normal((64, 4096)) * scale).astype(dt)

                def value_and_grad(z, u, fn=fn, kw=kw):
                    out, back = jax.vjp(lambda q: fn(input=q, **kw), z)
                    return out, back(u)[0]

                out_shape = jax.eval_shape(lambda q, fn=fn, kw=kw: fn(input=q, **kw), x)
                u = np.full(out_shape.shape, 1.125, dtype=out_shape.dtype)
                out, g = jax.jit(value_and_grad)(x, u)
                h.update(np.asarray(out).tobytes())
                h.update(np.asarray(g).tobytes())
            digests[f"{name} {fmt}"] = h.hexdigest()[:16]
    ms = lambda v: 1e3 * statistics.median(v)  # noqa: E731
    return {"trace_ms": ms(trace), "lower_ms": ms(lower), "compile_ms": ms(compile_), "digests": digests,
            "jax": jax.__version__}


def _run(flags: str, n_shapes: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="lossproof-xla-") as cache:
        env = {**os.environ, "LOSSPROOF_CACHE": cache, "XLA_FLAGS": flags}
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(n_shapes)], env=env,
                           capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"xla_emitters: the measuring process failed (XLA_FLAGS={flags!r}): "
                         f"{(p.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", type=int, default=20, help="new shapes compiled per process (default 20)")
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the two settings (default 2)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(args.child)))
        return 0
    if args.shapes < 1 or args.rounds < 1:
        print("xla_emitters: --shapes and --rounds must be at least 1", file=sys.stderr)
        return 2
    try:
        import jax  # noqa: F401
    except ImportError:
        print("xla_emitters: JAX is not installed (pip install 'lossproof[jax]')", file=sys.stderr)
        return 2
    runs: dict = {"": [], OLDER: []}
    for _ in range(args.rounds):
        for flags in runs:
            runs[flags].append(_run(flags, args.shapes))
    default, older = runs[""], runs[OLDER]
    print(f"jax {default[0]['jax']}, {args.shapes} new shapes of cross_entropy with its gradient per process, "
          f"{args.rounds} alternations, median ms per shape:")
    print(f"{'emitters':>36} | {'trace':>7} | {'lower':>7} | {'compile':>8}")
    for label, rs in (("default (fusion)", default), (OLDER, older)):
        med = {k: statistics.median(r[k] for r in rs) for k in ("trace_ms", "lower_ms", "compile_ms")}
        print(f"{label:>36} | {med['trace_ms']:7.1f} | {med['lower_ms']:7.1f} | {med['compile_ms']:8.1f}")
    ratio = statistics.median(r["compile_ms"] for r in older) / statistics.median(r["compile_ms"] for r in default)
    print(f"compile, older / default: {ratio:.2f}x")
    d0, d1 = default[0]["digests"], older[0]["digests"]
    unstable = [k for k in d0 if len({r["digests"][k] for r in default}) > 1]
    differ = [k for k in d0 if d0[k] != d1[k]]
    print(f"bits: {len(d0)} functions and formats compared; "
          + (f"differ with the older emitters: {', '.join(differ)}" if differ else "all the same"))
    if unstable:
        print(f"(not reproducible between two default runs: {', '.join(unstable)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
