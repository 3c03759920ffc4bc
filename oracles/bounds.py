"""Stability bounds: the "stable" rung of NUMERICS.md, derived once per loss from its reference stable algorithm.

The reference algorithms are the textbook stable ones, evaluated in the format under test with pairwise
summation:

==============================  =================================================================  ==========
loss (per output element)       reference algorithm                                                 steps S
==============================  =================================================================  ==========
sigmoid                         1 / (1 + exp(-x)) or e^x / (1 + e^x) by the sign of x               3
logsigmoid, softplus            max(x, 0) + log1p(exp(-|x|)), times beta and 1/beta                  5
xlogy                           x * log(y)                                                          2
logsumexp, log_softmax          m = max; x - m; exp; pairwise sum of C; log; add/sub                4 + L(C)
softmax                         x - m; exp; pairwise sum of C; divide                               3 + L(C)
cross_entropy (class index)     log_softmax of the target (4 + L(C)); times the weight; the
                                label-smoothing sum over C (L(C) + 2)                               6 + 2 L(C)
cross_entropy (probabilities)   log_softmax (4 + L(C)); times t and w; pairwise sum over C          6 + 2 L(C)
nll_loss                        -w * x                                                              1
binary_cross_entropy            log p; log1p(-p); two products; sum; times w                        6
binary_cross_entropy_with_logits  (1-y) x + (1 + (pw-1) y)(log1p(e^-|x|) + max(-x, 0)); times w     8
kl_div                          t (log t - x), or e^t (t - x) for log_target                        3
==============================  =================================================================  ==========

with L(n) = ceil(log2 n), the depth of pairwise summation. Each step of a backward-stable algorithm adds at
most u times the magnitude it handles; in nats, magnitudes below 1 are not worth distinguishing (an absolute
error of u nats cannot change a training run), so every step costs at most u (|z| + 1). For one element:

    B = u * S * (|z| + 1)

and for a weighted element (class weights, BCE weight times pos_weight, the KL target t of t (log t - x)) the
unit is the weight's: the reference computes w (lse - x_t), whose inner steps err by u nats each, so
B = u * S * (|z| + W) with W the call's largest weight magnitude (normwise, as for gradients below).

A reduction over n elements with weights w_i and values v_i (the weighted elements, "none" outputs) and
denominator D (1 for "sum"; n, N or the total target weight for the means) adds pairwise summation of the n
values, the sum of the weights (when it is data) and the final division:

    B = u * ( S * sum_i (|v_i| + |w_i|) / D  +  L(n) * sum_i |v_i| / D  +  (1 + L(n)) * |z| )

Underflow: in the standard model with gradual underflow every rounding is fl(x) = x (1 + d) + e with |d| <= u
and |e| <= s_min / 2 (s_min the smallest subnormal), so each of the S steps of an element may also add s_min / 2
in absolute terms, and a reduction carries its n elements' underflow errors through the division by D (exact
additions of subnormals add none):

    B_element   += S * s_min / 2
    B_reduction += (n * S / D + L(n) + 1) * s_min / 2

(negligible unless the result or the weights are near the subnormal range, where they are what a stable
algorithm in that format can do).

The verdict allows K * B with K = 8 (NUMERICS: a small constant, never tuned per failure). An implementation
that accumulates one term at a time in float16 or bfloat16 has an error growing like n u instead of L(n) u
and fails this bound once n is in the hundreds, as it should.

Gradients are judged normwise: a component g_j of a gradient vector gets B_g = u * (S + 2) * (|g_j| + G)
(the backward pass of the same algorithm: two more steps; plus (S + 2) s_min / 2, the underflow term above: a
weighted gradient in the subnormals is rounded in absolute terms, whatever its weights), where G is the larger of
the largest component and the loss's natural unit of gradient (one nat per unit of input, times the largest weight,
over the mean's denominator): the gradient's version of the values' "+ 1" floor. So the cross-entropy gradient s_t - 1
computed with an absolute error of u (the usual exp(log_softmax) - 1) is stable, not accurate.

Everything here is exact rational arithmetic on Fractions: the inputs are |z| and sums of magnitudes that the
caller took from the oracle (finite, moderate exponents: callers cap magnitudes before converting).
"""

from __future__ import annotations

from fractions import Fraction

from .formats import Format, get_format

__all__ = ["K", "steps", "ceil_log2", "element_bound", "reduction_bound", "gradient_bound", "accurate_bound"]

#: the constant of the stable and accurate rungs (NUMERICS: K <= 8)
K = 8


def ceil_log2(n: int) -> int:
    """L(n) = ceil(log2 n), the depth of pairwise summation of n terms (0 for n <= 1)."""
    return max(0, (n - 1).bit_length())


def steps(loss: str, n_classes: int = 1, label_smoothing: float = 0.0, prob_targets: bool = False) -> int:
    """S, the rounding steps of the reference stable algorithm for one output element (table above)."""
    L = ceil_log2(n_classes)
    table = {
        "sigmoid": 3,
        "logsigmoid": 5,
        "softplus": 5,
        "xlogy": 2,
        "logsumexp": 4 + L,
        "log_softmax": 4 + L,
        "softmax": 3 + L,
        "cross_entropy": 6 + 2 * L,
        "nll_loss": 1,
        "binary_cross_entropy": 6,
        "binary_cross_entropy_with_logits": 8,
        "kl_div": 3,
    }
    try:
        return table[loss]
    except KeyError:
        raise ValueError(f"no stability bound is derived for {loss!r}") from None


def element_bound(fmt: str | Format, s: int, z_abs: Fraction, unit: Fraction = Fraction(1)) -> Fraction:
    """B = u S (|z| + W) + S s_min / 2 for one element, W its unit (1 nat times the call's largest weight)."""
    f = get_format(fmt)
    return f.u * s * (z_abs + unit) + s * Fraction(f.min_subnormal) / 2


def reduction_bound(fmt: str | Format, s: int, z_abs: Fraction, values_abs_sum: Fraction, weights_abs_sum: Fraction,
                    n: int, denominator_abs: Fraction) -> Fraction:
    """B for a sum or mean over n weighted elements (formula in the module docstring)."""
    f = get_format(fmt)
    u = f.u
    D = denominator_abs if denominator_abs else Fraction(1)
    L = ceil_log2(n)
    underflow = (n * s / D + L + 1) * Fraction(f.min_subnormal) / 2
    return u * (s * (values_abs_sum + weights_abs_sum) / D + L * values_abs_sum / D + (1 + L) * z_abs) + underflow


def gradient_bound(fmt: str | Format, s: int, g_abs: Fraction, g_max: Fraction) -> Fraction:
    """B_g = u (S + 2) (|g_j| + G) + (S + 2) s_min / 2 for one gradient component (normwise, with the
    underflow term of each of its S + 2 steps, as for an element)."""
    f = get_format(fmt)
    return f.u * (s + 2) * (g_abs + g_max) + (s + 2) * Fraction(f.min_subnormal) / 2


def accurate_bound(fmt: str | Format, z_abs: Fraction, kappa: Fraction) -> Fraction:
    """The accurate rung's allowance K u (|z| + kappa) + the smallest subnormal (NUMERICS)."""
    f = get_format(fmt)
    return K * f.u * (z_abs + kappa) + Fraction(f.min_subnormal)
