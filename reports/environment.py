"""What selects the kernels a run measured: the part of a run's environment that can change a subject's numbers
without any change to its code.

The same torch build picks other kernels on another CPU (``ATEN_CPU_CAPABILITY``: default, avx2, avx512), splits a
reduction otherwise with another thread count, and NumPy dispatches its loops by the SIMD extensions the CPU has.
XLA's flags (``XLA_FLAGS``) choose how JAX's functions are compiled: with ``--xla_cpu_use_fusion_emitters=false``
jax.nn.log_sigmoid and softplus return other float16 bits, values and gradients, on the same inputs (jax 0.10.2,
``benchmarks/xla_emitters.py``, 2026-12-07; ``--xla_cpu_max_isa=AVX2`` against AVX-512 left every bit of that
sample as it was), so a run with them set is another environment; a run without them records no such field and
keeps its name.
A baseline's ULP counts and correctly rounded rates hold for one such environment only; across environments only
the verdict rungs and the derived bounds (NUMERICS.md) compare (reports/gate.py).

``kernel_fields(env)`` keeps the fields of a results run's ``environment`` (reports/schema.py) that select kernels,
``environment_id`` names them by a short digest, ``describe`` in one line. Pure Python: no framework is imported
here (the engine fills the environment when it writes results).
"""

from __future__ import annotations

import hashlib
import json

#: the fields of a run's environment that select kernels (missing ones are left out, not guessed)
KERNEL_FIELDS = ("machine", "torch", "torch_cpu_capability", "torch_threads", "torch_cuda", "cuda", "numpy",
                 "numpy_simd", "scipy", "jax", "jaxlib", "xla_flags")


def kernel_fields(env: dict | None) -> dict:
    """The kernel-selecting fields of a run's environment ({} for an unknown environment)."""
    env = env or {}
    return {k: env[k] for k in KERNEL_FIELDS if env.get(k) is not None}


def environment_id(env: dict | None) -> str:
    """A short, stable name of the kernel-selecting fields: equal for runs that measure the same kernels."""
    fields = kernel_fields(env)
    if not fields:
        return "unknown"
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def describe(env: dict | None) -> str:
    """One line: ``torch 2.13.0 (cpu AVX512, 2 threads), numpy 2.4.6 (AVX512_ICL), scipy 1.17.1, x86_64``."""
    f = kernel_fields(env)
    if not f:
        return "an unknown environment (no kernel fields recorded)"
    parts = []
    if "torch" in f:
        extra = [f"cpu {f['torch_cpu_capability']}" if "torch_cpu_capability" in f else None,
                 f"{f['torch_threads']} threads" if "torch_threads" in f else None,
                 f"CUDA {f['torch_cuda']}" if "torch_cuda" in f else None]
        extra = [e for e in extra if e]
        parts.append(f"torch {f['torch']}" + (f" ({', '.join(extra)})" if extra else ""))
    if "cuda" in f and f["cuda"]:
        parts.append("GPU " + ", ".join(map(str, f["cuda"])))
    if "numpy" in f:
        simd = f.get("numpy_simd")
        parts.append(f"numpy {f['numpy']}" + (f" ({simd[-1] if isinstance(simd, list) and simd else simd})"
                                               if simd else ""))
    for k in ("scipy", "jax", "jaxlib"):
        if k in f:
            parts.append(f"{k} {f[k]}")
    if "xla_flags" in f:
        parts.append(f"XLA_FLAGS={f['xla_flags']!r}")
    if "machine" in f:
        parts.append(str(f["machine"]))
    return ", ".join(parts)
