"""An independent, rigorous cross-check of the oracles against python-flint's Arb ball arithmetic.

For each of the twelve oracles, random *extreme* cases (deterministic per loss: ``random.Random(crc32(name))``)
are drawn with finite inputs exactly representable in the format under test (float64, float32, float16 and
bfloat16 in turn): logits from subnormals to the largest finite value, the exp overflow/underflow/saturation
thresholds a few ULPs either side, dominant logits, near-ties, large common offsets; probabilities 0, 1 and one
ULP from each; weights from the smallest subnormal to the largest finite value. Each loss is re-derived from its
definition (torch.nn.functional's semantics, NUMERICS.md's conventions) in Arb by ``arb_reference.py``, which
also draws the cases: nothing of the oracle's implementation is used but ``formats.round_mpf``, the rounding of
an *exact* binary value into a format (and ``round_to_format``/``next_up``/``next_down`` to make the inputs).

The Arb evaluation is repeated at 64, 128, ..., 4096 bits until both ends of every ball round to the same value
of the format; that value must equal the oracle's ``.to(fmt)`` bit for bit, the sign of a zero included whenever
the exact value is known to be nonzero. Every tenth case also checks one component of the gradient of the first
output element.

Cases whose exact result is NaN or infinite (0/0 means, log 0 in BCE, xlogy(x, 0)) are not counted: for them
only the special value itself is checked. The test draws cases until ``crosscheck_cases()`` cases have a finite
exact value (1,000 by default, 200 under the ``dev`` profile, 100,000 under ``thorough``). Any disagreement, an
oracle exception included, fails the test with a table of the first few.
"""
from __future__ import annotations

import collections
import math
import os
import random
import zlib

import pytest

flint = pytest.importorskip("flint", reason="python-flint (the test extra) runs the Arb cross-check")
from flint import ctx  # noqa: E402

import oracles  # noqa: E402
from lossproof import profiles  # noqa: E402
from tests.meta.arb_reference import LOSSES, PRECS, agree, arb_decide, flat  # noqa: E402

FMTS = ("float64", "float32", "float16", "bfloat16")
GRAD_EVERY = 10
MAX_SHOWN = 8


# ==================================================================================================
# the test


class Stats:
    def __init__(self):
        self.cases = self.finite_cases = self.special_cases = 0
        self.values = self.special_values = self.grads = self.unsigned_zeros = 0
        self.max_prec = 0


def _fmt_float(v):
    if isinstance(v, float):
        return f"{v!r} ({v.hex()})" if math.isfinite(v) else repr(v)
    return str(v)


def _oracle_value(ex, fmt):
    try:
        return ex.to(fmt)
    except Exception as exc:  # the oracle must answer every finite case: reported, never skipped
        return exc


def run_case(name, case, stats, failures):
    _, arb_fn, grad_fn = LOSSES[name]
    fmt = case.fmt
    stats.cases += 1

    def fail(what, oracle, kind, r, prec):
        if isinstance(oracle, Exception):
            oracle = f"raised {type(oracle).__name__}: {str(oracle)[:90]}"
        else:
            oracle = _fmt_float(oracle)
        failures.append((case.describe(), what, oracle, f"{_fmt_float(r)} [{kind} @{prec} bits]"))

    try:
        outs = flat(getattr(oracles, name)(*case.args, **case.kw))
    except Exception as exc:
        fail("value", exc, "-", "-", "-")
        return
    ovals = [_oracle_value(o, fmt) for o in outs]
    decided = arb_decide(lambda: arb_fn(case), fmt)
    if len(decided) != len(outs):
        failures.append((case.describe(), "shape", f"{len(outs)} outputs", f"{len(decided)} outputs"))
        return
    finite = 0
    for i, (o, ex, (kind, r, prec)) in enumerate(zip(ovals, outs, decided)):
        stats.max_prec = max(stats.max_prec, prec)
        if kind == "special":
            stats.special_values += 1
            if isinstance(o, Exception) or not ex.is_special or not agree(o, kind, r):
                fail(f"value[{i}] (exact special)", o, kind, r, prec)
            continue
        finite += 1
        stats.values += 1
        stats.unsigned_zeros += kind == "zero" and prec == PRECS[-1]
        if kind == "undecided" or isinstance(o, Exception) or ex.is_special or not agree(o, kind, r):
            fail(f"value[{i}]", o, kind, r, prec)
    if finite:
        stats.finite_cases += 1
    else:
        stats.special_cases += 1
    j = case.gj
    if j is None or decided[0][0] in ("special", "undecided") or outs[0].is_special:
        return
    try:
        og = _oracle_value(flat(outs[0].grad)[j], fmt)
    except Exception as exc:
        og = exc
    kind, r, prec = arb_decide(lambda: [grad_fn(case, j)], fmt)[0]
    stats.grads += 1
    stats.unsigned_zeros += kind == "zero" and prec == PRECS[-1]
    stats.max_prec = max(stats.max_prec, prec)
    if kind == "undecided" or isinstance(og, Exception) or not agree(og, kind, r):
        fail(f"d value[0] / d input[{j}]", og, kind, r, prec)


def _category(failure):
    _, what, oracle, arb_side = failure
    kind = "gradient" if what.startswith("d ") else "value"
    if oracle.startswith("raised "):
        return f"{kind}: oracle raised {oracle.split()[1].rstrip(':')}"
    if "[undecided" in arb_side:
        return f"{kind}: Arb undecided"
    return f"{kind}: different rounding"


MEMORY_HEADROOM = 1 << 30  # bytes of address space the test may add to the worker process


@pytest.fixture
def guarded():
    """Restore Arb's working precision afterwards, and cap the worker's address space (Linux) at its current
    size + 1 GiB while the test runs: an oracle that builds a 2**(1.4e10)-sized integer must fail this test
    with a MemoryError, not take the machine down with it. Restored afterwards."""
    saved_prec = ctx.prec
    restore = None
    try:
        import resource

        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = size + MEMORY_HEADROOM
        if (soft == resource.RLIM_INFINITY or soft > cap) and (hard == resource.RLIM_INFINITY or cap <= hard):
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
            restore = (resource, soft, hard)
    except (ImportError, OSError, ValueError):
        pass
    try:
        yield
    finally:
        if restore is not None:
            resource, soft, hard = restore
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        ctx.prec = saved_prec


@pytest.mark.parametrize("name", list(LOSSES), ids=list(LOSSES))
def test_oracle_matches_arb(name, guarded):
    need = profiles.current().crosscheck_cases
    rng = random.Random(zlib.crc32(name.encode()))
    gen = LOSSES[name][0]
    stats, failures = Stats(), []
    i = 0
    while stats.finite_cases < need and i < 3 * need + 100:
        case = gen(rng, FMTS[i % len(FMTS)])
        if i % GRAD_EVERY:
            case.gj = None
        run_case(name, case, stats, failures)
        i += 1
    print(f"\n{name}: {stats.cases} cases ({stats.finite_cases} finite, {stats.special_cases} exact NaN/inf, "
          f"skipped), {stats.values} finite values, {stats.special_values} special values, {stats.grads} "
          f"gradients; {stats.unsigned_zeros} zeros of undecidable sign; Arb up to {stats.max_prec} bits")
    if failures:
        kinds = collections.Counter(_category(f) for f in failures)
        lines = [f"{len(failures)} disagreement(s) between the oracle and Arb for {name} ("
                 + ", ".join(f"{k}: {v}" for k, v in kinds.most_common())
                 + f"); the first {min(len(failures), MAX_SHOWN)}:"]
        for desc, what, o, a in failures[:MAX_SHOWN]:
            lines.append(f"  {what}: oracle {o}  arb {a}\n    input {desc}")
        pytest.fail("\n".join(lines), pytrace=False)
    assert stats.finite_cases >= need, (
        f"only {stats.finite_cases} of {stats.cases} cases had a finite exact value; {need} are required"
    )
