"""The oracle's work on one example, predicted before it starts: what caps a single example, the same on every
machine.

Why a prediction and not a clock: a per-example time limit skips different examples on a loaded machine than on
an idle one, and a skipped example calls no ``target``, so Hypothesis's search then draws a different sequence:
the verdict would depend on the load. A count computed from the input alone skips the same examples everywhere.

The unit is a bit-term: one number the oracle evaluates (a value or a gradient component) at one bit of working
precision. What drives the cost (oracles/exact.py, oracles/fast.py):

- the terms: the oracle builds an expression of O(C) nodes per row and evaluates every compared number, so the
  cost grows with the numbers in the call (inputs, targets, weights: ``codec.count`` of every tensor);
- the working precision: Ziv's loop starts at p + ``START_GUARD`` bits and doubles until the rounding is
  decided. What forces it up is cancellation: a softmax-family gradient s_t - 1 with s_t = 1 - exp(-g) cancels
  about g * log2(e) bits, g at most the spread (max - min) of the finite inputs; and an exponential of an argument
  of magnitude |x| needs about log2|x| more bits for its argument reduction. Both are capped by the oracle's
  precision cap (``oracles.get_precision_cap``), past which it raises instead of going on.

So ``predict`` = terms x (OVERHEAD + min(cap, p + START_GUARD + log2(1 + max|x|) + log2(e) * spread)). OVERHEAD
is the cost of a number at low precision in the same unit (mpmath's per-operation overhead; the fast path is
cheaper than this, never dearer): measured on a 2-core machine, the slowest examples of the ci battery cost
0.2 to 0.9 microseconds per bit-term with OVERHEAD = 1,000 (8,192 terms at ~200 bits: 2.5 s; 515 terms at
14,600 bits: 1.7 s; 36 terms at the 32,768-bit cap: 1.0 s), so the prediction is within a factor of about 4
of the time. It is an upper-bound-minded model (the spread of a whole tensor bounds each row's), deterministic,
and cheap (one pass over the numbers).
"""

from __future__ import annotations

import math

from oracles.codec import flat
from oracles.exact import START_GUARD, get_precision_cap
from oracles.formats import get_format

__all__ = ["predict", "OVERHEAD", "LOG2E"]

#: a number's low-precision cost in bit-terms (mpmath's per-operation overhead); see the module docstring
OVERHEAD = 1_000
LOG2E = 1.0 / math.log(2.0)


def predict(loss: str | None, fmt: str | None, kwargs: dict) -> int:
    """The predicted oracle work of one example, in bit-terms (see the module docstring). ``loss`` is part of the
    signature for losses whose cost the model may need to tell apart; ``fmt`` gives p (binary64's when None or
    unknown). Non-numeric parameters (reduction names, flags) count nothing; NaN and infinities count as terms
    but not in the spread (the oracle's special values are decided without precision)."""
    del loss  # the same model for every loss today: the spread bounds the cancellation of each
    try:
        p = get_format(fmt).p if fmt else 53
    except (KeyError, ValueError):
        p = 53
    terms = 0
    lo, hi, big = math.inf, -math.inf, 0.0
    for value in kwargs.values():
        if not isinstance(value, (list, tuple, float, int)) or isinstance(value, bool):
            continue
        for x in flat(value):
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                continue
            terms += 1
            if isinstance(x, float) and not math.isfinite(x):
                continue
            x = float(x)
            lo, hi, big = min(lo, x), max(hi, x), max(big, abs(x))
    spread = hi - lo if hi >= lo else 0.0
    cap = get_precision_cap()
    bits = p + START_GUARD + math.log2(1.0 + big) + LOG2E * spread  # a float: spread may be ~1e308
    return terms * (OVERHEAD + int(min(float(cap), bits)))
