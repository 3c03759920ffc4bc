"""Certified float64 results of the fast path: double-double (dd) evaluation with a rigorous error bound.

Why: ``oracles.fast`` bounds its binary64 evaluation within a few thousand u, which decides float32, float16 and
bfloat16 roundings but never a float64 one, so every float64 result of the softmax family took the mpmath path
(2.5 s a row at C = 128,256). Here the same quantities are evaluated in double-double arithmetic (a value is an
unevaluated sum hi + lo of two binary64, built from error-free transformations), with an absolute bound B per
output of about 2**-95 relative. When both ends of [hi + lo - B, hi + lo + B] round to the same binary64 with the
same sign (``certify64``), that is the correctly rounded result; otherwise the caller falls back to mpmath
exactly as before. ``oracles.fast`` calls this module when a float64 rounding is requested, or a narrower one its
binary64 bound leaves open (``_Source``): first the quick evaluation (steps Q1-Q2 below, about 2**-62), then the
accurate one (about 2**-95) for what the quick one leaves open.

What is covered: logsumexp, softmax, log_softmax, cross_entropy and nll_loss values (class-index targets,
reductions none / sum / mean), on the rows ``oracles.fast`` has already accepted. Gradients, kappa and
expressions still come from the mpmath path.

Building blocks (u = 2**-53; RN = binary64 round to nearest even; assumption A3 of ``oracles.fast``):
  TwoSum(a, b) = (s, e) with s = RN(a + b), s + e = a + b exactly (Knuth; exact also with underflow).
  FastTwoSum(a, b), exponent(a) >= exponent(b) or a = 0: the same with 3 operations (Dekker).
  Split(a) (Veltkamp, c = (2**27 + 1) a): a = a1 + a2 with 26 and 27 bits; exact unless |a| > 2**995 (overflow;
    callers check) . TwoProd(a, b) (Dekker, from the splits): p + e = a b exactly unless e underflows, which
    can only happen when |a b| < 2**-969 (then |error| <= 2**-1072, charged absolutely).
  dd add (Joldes, Muller, Popescu, "Tight and rigorous error bounds for basic building blocks of double-word
    arithmetic", ACM TOMS 44(2), 2017, Alg. 6): relative error <= 3u**2 / (1 - 4u) < 2**-104.4, any signs;
    charged DELTA_ADD = 2**-104.
  dd add of two nonnegative dd ("sloppy", Alg. 5 with nonnegative operands): s, e = TwoSum(ah, bh);
    t = RN(e + RN(al + bl)); FastTwoSum(s, t). |al + bl| <= u (ah + bh) and |e| <= u s, so the two roundings
    cost <= u**2 (ah + bh) + u (2u (1 + u)) (ah + bh): relative <= 3u**2 (1 + 2u) / (1 - u) < 2**-104.4 of the
    exact sum a + b (ah + bh <= (a + b) / (1 - u)); charged 2**-104.4 per addition.
  dd times double (JMP Alg. 7: <= 1.5u**2 + 4u**3) and dd / dd (JMP Alg. 17: <= 15u**2 + 56u**3): charged
    DELTA_MUL = 2**-100 and DELTA_DIV = 2**-98 (over 16x the published bounds), plus FLOOR64 absolute for
    results below 2**-960 (underflow inside the algorithm).
  Every bound below is computed in binary64 from nonnegative terms in a few dozen operations (relative error
  below 2**-46), multiplied by INFLATE = 1 + 2**-20 and increased by FLOOR64 = 2**-1070 (which covers a few
  roundings of 2**-1075 in the bound or in a subnormal dd result).

Error analysis. Row x_1..x_C (finite or -inf, at least two finite; rows with one finite entry have the exact
results of ``oracles.fast`` step 11), m = max x_j, d_j = x_j - m, e_j = exp(d_j), R = sum_{j != jmax} e_j,
L = log1p(R).

1. (dh_j, dl_j) = TwoSum(x_j, -m): d_j = dh_j + dl_j exactly, |dl_j| <= u |dh_j|. (x_j = -inf: e_j = 0 exactly.)
2. exp, for dh_j >= -745.2 (else e_j < 2**-1075 and E_j := 0, an absolute error < TAU_E). N = 2**14,
   k = rint(dh * N / ln2) (|k| < 2**24.1, 25 bits), ln2 / N = C1 + C2 + C3 + g with C1, C2 of 28 bits (so k C1,
   k C2 are exact), C3 = RN(ln2/N - C1 - C2) (|C3| < 2**-70, |g| <= u |C3|).
   t1 = dh - k C1 is exact: k = 0 gives dh; otherwise |dh| >= 2**-15.6, so dh and k C1 (C1's last bit is
   2**-42) are multiples of 2**-68, and |t1| <= (ln2/N)(1/2 + 2**-27.9) + |k| |ln2/N - C1| < 2**-15 (the rounding
   of dh * N/ln2 costs <= 2**-27.9 in k's rounding, |k| |ln2/N - C1| <= 2**-18), a multiple of 2**-68 of at most
   53 bits. (s, e) = TwoSum(t1, -k C2) exact; w = RN(RN(e + dl) - RN(k C3)); (rh, rl) = TwoSum(s, w).
   Arguments below -746 are clamped to -746 (their dl dropped): the result, below 2**-1074, is within TAU_E.
   With |e| <= u 2**-14, |dl| <= u |dh|, |k C3| <= (|dh| 2**14.53 + 1) 2**-70:
   |rh + rl - r| <= 2u**2 (|dh| + 1) + 3u (1 + 2u) |k C3| + |k| u |C3| <= RHO_R (1 + |dh|), RHO_R = 2**-102.5,
   where r = d - k ln2 / N, |rh| <= (ln2/N)(1/2 + 2**-26) <= 2**-15.5, |rl| <= u |rh|;
   so exp(rh + rl) = exp(r) (1 + t), |t| <= RHO_R (1 + |dh|) (1 + 2**-90).
3. P ~ exp(rh + rl) - 1: rh = a1 + a2 (Split, |a2| <= 2**-26 |rh|); rh**2 = a1**2 + a2 (a1 + rh), a1**2 exact;
   (ah, al) = FastTwoSum(rh, a1**2 / 2) exact; tail = RN(RN(rl (1 + rh)) + RN(a2 (a1 + rh)) / 2 + H) with
   H = RN(rh**3 (1/6 + rh/24 + rh**2/120)); Pl = RN(al + tail); P = ah + Pl. Error terms, absolute:
   Taylor remainder |r|**6 / 720 * e**|r| <= 2**-102.6; the rl terms dropped from the cubic and higher terms
   <= u |rh|**3 / 2 (1.01) <= 2**-100.6; H's evaluation (6 roundings) <= 6u |H| <= 2**-99.6; the tail's and Pl's
   roundings <= 3u 2**-49 + u 2**-48.9 <= 2**-100; a2 (a1 + rh)'s roundings <= 2**-109; rl**2 / 2 <= 2**-137.
   Total: |P - (exp(rh + rl) - 1)| <= PI_P = 2**-98.
4. E = T (1 + P), T = 2**(i/N) from a table of dd (Th, Tl) (|Th + Tl - T| <= u |Tl| <= 2**-105, computed with
   mpmath at 200 bits), i = k mod N: (ph, pl) = TwoProd(Th, ah) (exact, |ph| <= 2**-14.4);
   (hh, l0) = FastTwoSum(Th, ph); lo = RN(l0 + RN(pl + RN(RN(Tl (1 + ah)) + RN(Th Pl)))) (terms below 2**-47.5:
   6 roundings <= 2**-98.4; Tl Pl dropped <= 2**-100.9); (Eh, El) = FastTwoSum(hh, lo). With T's error times
   1 + P and Th's factor on PI_P: |E~ - T exp(rh + rl)| <= 2**-96.5 <= EPS_E T exp(rh + rl) / 1.0001,
   EPS_E = 2**-96.3 (T exp(rh + rl) >= 1 - 2**-15).
5. Scaling by 2**q, q = floor(k / N): exact, except that a subnormal result rounds each part once
   (<= 2 * 2**-1075; with every argument >= -700 one product by the normal 2**q, else 2**(q + 60) then 2**-60,
   so only the last product rounds). Such parts need not be normalized, but they are multiples of 2**-1074, so
   the sums of step 6 add them exactly while below 2**-969.
   Per term: |E~_j - e_j| <= e_j (EPS_E + RHO_R (1 + |dh_j|)) + TAU_E, TAU_E = 2**-1073 (EPS_E absorbs the
   cross term of the two relative errors).
6. R~ = pairwise dd sum (nonnegative additions, depth lam = ceil(log2 C)) of the E~_j, E~_jmax := 0:
   |R~ - sum E~| <= SIGMA sum E~, SIGMA = lam 2**-104.4 (1 + lam 2**-104), and sum E~ <= R~ / (1 - SIGMA).
   A~ = sum |dh_j| Eh_j in binary64: A = sum |dh_j| e_j <= (A~ (1 + 2**-30) + C 2**-1060) (1 + EPS_E + RHO_R 2**10)
   for C < 2**22 (gamma_C <= 2**-31; |dh| <= 745.2 < 2**10).
   |R~ - R| <= err_R = (SIGMA R~ / (1 - SIGMA) + (EPS_E + RHO_R) R_up + RHO_R A_up + C TAU_E),
   R_up = R~ (1 + 2**-80) + C TAU_E (>= R, as err_R < 2**-80 R + C TAU_E).
7. L: ``balls.Ball(Rh + Rl, err_R).log1p`` at 180 bits, a rigorous enclosure (mid, rad) of log1p over
   [R~ - err_R, R~ + err_R] (one scalar per row, oracles/balls.py's error accounting); Lh = RN(mid),
   Ll = RN(mid - Lh): err_L = rad + u |Ll| (rounded up).
8. log_softmax_j = d_j - L: dd add (no cancellation: both terms <= 0), |y~ - y| <= err_L + DELTA_ADD |y~| / (1 -
   DELTA_ADD). logsumexp = m + L: |z~ - z| <= err_L + DELTA_ADD |z~| / (1 - DELTA_ADD).
9. softmax_j = e_j / D, D = 1 + R: D~ = dd add of 1 and R~, |D~ - D| <= err_D = err_R + DELTA_ADD D~;
   s~ = E~_j /dd D~: |s~ - s| <= s~ (DELTA_DIV + eps_j + eps_D) / (1 - DELTA_DIV - eps_j - eps_D) + (TAU_E +
   FLOOR64) / D_lo, eps_j = EPS_E + RHO_R (1 + |dh_j|) (0 for jmax: E = 1 exact), eps_D = err_D / D_lo,
   D_lo = D~ - err_D (>= 1 - tiny; a -inf entry's softmax is exactly 0).
10. cross_entropy row: v = L - d_t (dd add, no cancellation), err_v = err_L + DELTA_ADD |v~| / (1 - DELTA_ADD);
   weighted: a = w v (dd times double), err_a = |w| err_v + DELTA_MUL |a~| (1 + 2**-40) (+ FLOOR64 below
   2**-960); an ignored row or a zero weight is an exact 0. nll_loss: a = -w x_t = TwoProd exactly (bound 0)
   when 2**-960 <= |a| and |w|, |x_t| <= 2**995, else bound FLOOR64 (underflow) or undecided (overflow).
11. sum: Th = fsum(all hi and lo) (the correctly rounded sum, CPython's math.fsum), Tl = fsum(the same and
   -Th) (|Tl| <= u |Th|, error <= u |Tl|): err_T = sum err_a (1 + 2**-40) + 2u |Tl|. mean: W the same for the
   kept weights (the count, exact, when unweighted; |W~ - W| <= err_W = 2u |Wl|); q~ = T~ /dd W~:
   |q~ - T/W| <= (err_T + |T~| err_W / |W~|) / (|W~| - err_W) + DELTA_DIV |q~| (1 + 2**-40).
12. ``certify64`` (and ``certify64_offsets``, for z in [hi + lo + a, hi + lo + b]): (c, r) = TwoSum(hi, lo);
   z rounds to c if r + b < h_up and -(r + a) < h_down, h the half distances to c's binary64 neighbours (on the
   overflow side the half ulp below), tested as b < g_up = h_up - r and -a < g_dn = h_dn + r, each g computed
   with one rounding and lowered by 2**-51 relative (so a lower bound, and exactly 0 at a tie), in a scaled
   copy (x 2**200 where |c| < 2**-800: exact, and 2**-1075 becomes representable). An open end allows equality.
   Where r is a tie (r = -h_down or h_up) and the offsets lie wholly beyond it, c is replaced by that neighbour
   (the tie becomes the neighbour's half gap reached from inside). c = 0 needs a known sign (then +-0.0);
   B = 0 is the exact value c (an exact zero is +0.0, or -0.0 where the sign is known negative: step 7b).

7b. A row whose other entries all lie below m - 10**4 ("far") has 0 < R < C e**-10000 < 2**-1075: R~ = 0 with
   err_R = 2**-1074; its outputs that are L itself (-L for log_softmax at jmax, L - d_t at t = jmax for an
   unreduced cross_entropy) round to a zero of the known sign and are passed to certify64 as an exact zero with
   that sign; in a sum they are charged 2**-1074 each.
13. A second enclosure where the value is an exact dd plus L (log_softmax d_j - L, logsumexp m + L, unweighted
   cross_entropy -d_t + L): L in [L_dn, L_up] (binary64, from step 7 rounded outward; open at L_dn = 0 when two
   entries are finite, as then L > 0). ``certify64_offsets`` decides it without the dd add's rounding, which
   matters when d_j is exactly a binary64 midpoint (x_j - m of float64 logits often is) and L is below the dd
   bound: the tie is then broken by L's side alone. Both enclosures are rigorous; a rounding either decides is
   the answer.

The quick evaluation (tried first; the accurate one above only for what it leaves open): the same steps with
steps 2-6 replaced by Q1-Q2, so err_R is about 2**-62 R instead of 2**-95 R, which still decides all but about
2**-9 of float64 roundings of random values, at half the cost.
Q1. Per term, with t1 = dh - k C1 exact (step 2), t2 = RN(dl - RN(k C2F)), C2F = RN(ln2/N - C1) (|dl| <= u |dh|,
   |k C2F| <= 2**-27.4 |dh| + 2**-42, |ln2/N - C1 - C2F| <= 2**-96, |k| <= 2**14.53 |dh| + 1; two roundings):
   |t1 + t2 - r| <= 2**-78.9 |dh| + 2**-93.5. rh = RN(t1 + t2); P = RN(t1 + RN(t2 + Q)),
   Q = RN(rh**2 (1/2 + rh (1/6 + rh/24))) (|rh| <= 2**-15.5 + 2**-26, |Q| <= 2**-31.9): Q's 6 roundings and its
   argument rh instead of r (|Q'| <= 2**-15) cost <= 2**-82; the Taylor remainder r**5/120 e**|r| <= 2**-84.4;
   P's two roundings <= 2u 2**-15.4 = 2**-67.4. A = 2**q Th (exact), B = 2**q RN(RN(Th P) + Tl)
   (|B| <= 2**-15.3 A; Th P's rounding and the sum's <= 2u 2**-14.4 = 2**-66.4; Tl P dropped <= 2**-67.4; Tl's
   table error <= 2**-105):
   |A + B - e_j| <= e_j (EPS_Q + RHO_Q0 + RHO_Q1 |dh_j|) + TAU_E, EPS_Q = 2**-64.5 (>= 2 * 2**-67.4 + 2**-66.4
   + 2**-67.4 + 2**-82 + 2**-84.4 over T (1 + P) >= 1 - 2**-15), RHO_Q0 = 2**-92, RHO_Q1 = 2**-78 (the argument's error
   through exp; both with margin); subnormal parts as in step 5.
Q2. Per chunk of K columns and row: sigma = 2**e >= K max_j A_j (frexp); q_j = RN(RN(sigma + A_j) - sigma) is
   A_j rounded to a multiple of sigma 2**-52, exactly (sigma + A_j in [sigma, 2 sigma], Sterbenz), r_j = A_j -
   q_j exactly, |r_j| <= sigma 2**-53, and every partial sum of the q_j is a multiple of sigma 2**-52 below
   2 sigma, so sum q_j is exact in any order. The chunks' sums are added pairwise as dd (TwoSum at every node,
   the low parts in binary64: <= depth_A**2 u**2 sum A). B'_j = RN(B_j + r_j) (<= u (|B_j| + |r_j|)), summed
   pairwise in binary64 (<= depth_B u sum |B'|), so with rho = sum over chunks of K sigma 2**-53 >= sum |r_j|
   and sum |B_j| <= 2**-15.3 sum A: |error| <= (depth_B + 1) 2**-52 2**-15.3 sum A + (depth_B + 2) 2**-52 rho.
   The two sums are added by the dd add (DELTA_ADD): err_R = ((EPS_Q + sig + RHO_Q0) R_up + RHO_Q1 A_up +
   (depth_B + 2) 2**-52 rho + C TAU_E), sig = depth_A**2 2**-104 + (depth_B + 1) 2**-67.3 + DELTA_ADD, R_up =
   R~ (1 + 2**-50) + C TAU_E, A_up = min(746, m - min_j x_j) (1 + 2**-50) R_up >= sum |d_j| e_j (no pass of its
   own: RHO_Q1 746 = 2**-68.5 stays below EPS_Q).

Result: B is about 2**-95 of the value for random rows (EPS_E + the sum's depth), so float64 roundings are
decided except within about 2**-42 relative of a rounding boundary, midpoint or zero.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

from mpmath import libmp

from .balls import Ball

if TYPE_CHECKING:  # annotations only: NumPy stays optional at run time
    from numpy import bool_, float64
    from numpy.typing import NDArray

    A = NDArray[float64]  # a binary64 array (or a binary64 scalar: the helpers are elementwise)
    DD = tuple[A, A]  # a double-double value: (high, low) parts

np: Any
try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy is a test dependency
    np = None

__all__ = ["DDRows", "certify64", "class_values", "reduce_dd", "exp_dd"]

U = 2.0**-53
SPLIT = 134217729.0  # 2**27 + 1
N_TAB = 1 << 14
LOG_N = 14
DELTA_ADD = 2.0**-104
DELTA_MUL = 2.0**-100
DELTA_DIV = 2.0**-98
EPS_E = 2.0**-96.3
RHO_R = 2.0**-102.5
TAU_E = 2.0**-1073
FLOOR64 = 2.0**-1070
INFLATE = 1.0 + 2.0**-20
EXP_MIN = -745.2  # below: exp(d) < 2**-1075
BIG = 2.0**995  # Veltkamp's split overflows above
TINY_PROD = 2.0**-960  # a product's error term may underflow below
L_PREC = 180
FAR = -1e4  # exp(FAR) * 2**40 < 2**-1075
EPS_Q = 2.0**-64.5  # the quick exp's relative error (step Q1)
RHO_Q0 = 2.0**-92  # and its argument reduction's, relative, plus RHO_Q1 |d| (step Q1)
RHO_Q1 = 2.0**-78
# elements per block of the vectorised passes (any size keeps the bounds: they are computed from the blocks' sizes);
# 2**13 to 2**18 measured by benchmarks/oracle_speed.py --headline, 2**16 the fastest: fewer NumPy calls, still in L2
_CHUNK = 1 << 16
_SHIFTER = 1.5 * 2.0**52  # exp_quick: RN(y + _SHIFTER) - _SHIFTER = rint(y) for |y| < 2**51
_SHIFTER_BITS = int.from_bytes(struct.pack("<d", _SHIFTER), "little")  # its encoding, 0x4338000000000000
_PARTIAL = 64  # a chunk's pairwise sum stops at this width; the partial sums of a row are summed at the end

_tables: dict[str, Any] = {}
_RN = libmp.round_nearest  # libmp.to_float truncates unless told


def _constants():
    """(TH, TL, INVL, C1, C2, C3): the dd table of 2**(i/N) and the Cody-Waite split of ln2/N, from mpmath at
    200 bits (|error| < 2**-190 relative, far below the u**2 of the dd representation), computed once."""
    if not _tables:
        prec = 200
        ln2 = libmp.mpf_ln2(prec)
        step = libmp.mpf_shift(ln2, -LOG_N)
        th = np.empty(N_TAB)
        tl = np.empty(N_TAB)
        for i in range(N_TAB):
            v = libmp.mpf_exp(libmp.mpf_mul(step, libmp.from_int(i), prec), prec)
            h = libmp.to_float(v, rnd=_RN)
            th[i] = h
            tl[i] = libmp.to_float(libmp.mpf_sub(v, libmp.from_float(h), prec), rnd=_RN)

        def trunc(v, bits):
            sign, man, exp, bc = v
            if bc > bits:
                man >>= bc - bits
                exp += bc - bits
            return libmp.to_float(libmp.normalize(sign, man, exp, libmp.bitcount(man), prec, libmp.round_down))

        c1 = trunc(step, 28)
        rest = libmp.mpf_sub(step, libmp.from_float(c1), prec)
        c2 = trunc(rest, 28)
        c3 = libmp.to_float(libmp.mpf_sub(rest, libmp.from_float(c2), prec), rnd=_RN)
        c2f = libmp.to_float(rest, rnd=_RN)  # the quick evaluation's second constant, ln2/N - C1 to 53 bits
        _tables.update(TH=th, TL=tl, INVL=float(N_TAB) / math.log(2.0), C1=c1, C2=c2, C3=c3, C2F=c2f)
    t = _tables
    return t["TH"], t["TL"], t["INVL"], t["C1"], t["C2"], t["C3"]


# --------------------------------------------------------------------------------------------------
# error-free transformations and dd operations (vectorised)


def two_sum(a: A, b: A) -> DD:
    s = a + b
    bb = s - a
    if not isinstance(bb, np.ndarray):  # scalars
        return s, (a - (s - bb)) + (b - bb)
    e = s - bb  # (a - (s - bb)) + (b - bb), in place
    np.subtract(a, e, out=e)
    np.subtract(b, bb, out=bb)
    e += bb
    return s, e


def fast_two_sum(a: A, b: A) -> DD:
    s = a + b
    return s, b - (s - a)


def _split(a):
    c = SPLIT * a
    a1 = c - (c - a)
    return a1, a - a1


def two_prod(a: A, b: A) -> DD:
    p = a * b
    a1, a2 = _split(a)
    b1, b2 = _split(b)
    return p, ((a1 * b1 - p) + a1 * b2 + a2 * b1) + a2 * b2


def dd_add(ah: A, al: A, bh: A, bl: A) -> DD:
    """JMP 2017 Alg. 6 (AccurateDWPlusDW): relative error <= 3u**2 / (1 - 4u)."""
    sh, sl = two_sum(ah, bh)
    th, tl = two_sum(al, bl)
    vh, vl = fast_two_sum(sh, sl + th)
    return fast_two_sum(vh, tl + vl)


def dd_mul_d(xh: A, xl: A, y: A) -> DD:
    """JMP 2017 Alg. 7 (DWTimesFP1): relative error <= 1.5u**2 + 4u**3 (no underflow, |xh|, |y| <= 2**995)."""
    ch, cl1 = two_prod(xh, y)
    th, tl1 = fast_two_sum(ch, xl * y)
    return fast_two_sum(th, tl1 + cl1)


def dd_div(xh: A, xl: A, yh: A, yl: A) -> DD:
    """JMP 2017 Alg. 17 (DWDivDW2): relative error <= 15u**2 + 56u**3 (no underflow or overflow)."""
    th = xh / yh
    rh, rl = dd_mul_d(yh, yl, th)
    ph, pl = two_sum(xh, -rh)
    dlow = (pl - rl) + xl
    tl = (ph + dlow) / yh
    return fast_two_sum(th, tl)


def _sum_nonneg(h, l, stop=1):  # noqa: E741
    """Pairwise dd sum along axis 1 of nonnegative dd values (step 6), halving the width until it is at most
    ``stop``: (hi, lo) of shape (rows, width) and the number of levels."""
    depth = 0
    while h.shape[1] > stop:
        w = h.shape[1]
        k = w // 2
        ah, al, bh, bl = h[:, :k], l[:, :k], h[:, k:2 * k], l[:, k:2 * k]
        s, e = two_sum(ah, bh)
        t = e + (al + bl)
        nh, nl = fast_two_sum(s, t)
        if w % 2:
            nh = np.concatenate([nh, h[:, -1:]], axis=1)
            nl = np.concatenate([nl, l[:, -1:]], axis=1)
        h, l = nh, nl  # noqa: E741
        depth += 1
    return h, l, depth


def exp_dd(dh: A, dl: A) -> tuple[A, A, A]:
    """(Eh, El, d) with Eh + El = exp(dh + dl) within steps 2-5, for dh <= 0 (-inf allowed), |dl| <= u |dh|
    where dh is finite; d = max(dh, -746), the clamped argument."""
    TH, TL, INVL, C1, C2, C3 = _constants()
    # below EXP_MIN the result is < 2**-1075 (step 2): clamping at -746 gives 0 or 2**-1074, within TAU_E
    low = dh.size and not dh.min() >= -700.0
    if low:
        d = np.maximum(dh, -746.0)
        dl = np.where(dh == d, dl, 0.0)  # a clamped entry's dl is dropped (a -inf entry's is NaN)
    else:
        d = dh
    kf = np.rint(d * INVL)
    t1 = d - kf * C1
    b = kf * C2
    s = t1 - b
    bb = s - t1
    e = (t1 - (s - bb)) - (b + bb)
    w = (e + dl) - kf * C3
    rh, rl = two_sum(s, w)
    k = kf.astype(np.int64)
    i = k & (N_TAB - 1)
    q = k >> LOG_N
    Th = TH[i]
    Tl = TL[i]
    a1, a2 = _split(rh)
    hsq = 0.5 * (a1 * a1)
    sql = a2 * (a1 + rh)
    ah = rh + hsq
    al = hsq - (ah - rh)
    H = (rh * rh) * rh * ((rh * (1.0 / 120) + (1.0 / 24)) * rh + (1.0 / 6))
    tail = (rl * (1.0 + rh) + 0.5 * sql) + H
    Pl = al + tail
    ph, pl = two_prod(Th, ah)
    hh = Th + ph
    l0 = ph - (hh - Th)
    lo = l0 + (pl + (Tl * (1.0 + ah) + Th * Pl))
    Eh = hh + lo
    El = lo - (Eh - hh)
    if low:  # a subnormal result is possible: scale in two steps, so that only the last one rounds
        S = ((q + (1023 + 60)) << 52).view(np.float64)
        return (Eh * S) * 2.0**-60, (El * S) * 2.0**-60, d
    S = ((q + 1023) << 52).view(np.float64)  # d >= -700: 2**q is normal and both products exact
    return Eh * S, El * S, d


def exp_quick(dh: A, dl: A) -> tuple[A, A, A]:
    """(A, B, d): A + B = exp(dh + dl) within step Q1's bound, A = 2**q Th exact (a table value), |B| < 2**-15.3 A;
    d = max(dh, -746) as in ``exp_dd``. The same operations as written in step Q1, in place (no temporary
    arrays); k = rint(d N/ln2) as RN(RN(d N/ln2) + 1.5 2**52) - 1.5 2**52, which is the same integer
    (|d N/ln2| < 2**25, so the sum lies in [2**52, 2**53) where the spacing is 1, ties to even as rint), its bits
    read off the sum's encoding."""
    TH, TL, INVL, C1, C2, C3 = _constants()
    low = dh.size and not dh.min() >= -700.0
    if low:
        d = np.maximum(dh, -746.0)
        dl = np.where(dh == d, dl, 0.0)
    else:
        d = dh
    kf = np.multiply(d, INVL)
    kf += _SHIFTER
    k = kf.view(np.int64) - _SHIFTER_BITS
    kf -= _SHIFTER  # rint(d N/ln2), exactly
    t1 = np.multiply(kf, C1)
    np.subtract(d, t1, out=t1)  # t1 = d - k C1
    np.multiply(kf, _tables["C2F"], out=kf)
    t2 = np.subtract(dl, kf, out=kf)  # t2 = dl - k C2F
    rh = t1 + t2
    P = np.multiply(rh, 1.0 / 24)
    P += 1.0 / 6
    P *= rh
    P += 0.5
    np.multiply(rh, rh, out=rh)
    P *= rh
    P += t2
    P += t1  # P = t1 + (t2 + (rh rh) (1/2 + rh (1/6 + rh/24)))
    i = np.bitwise_and(k, N_TAB - 1)
    Th = TH.take(i)
    P *= Th
    P += TL.take(i)  # B = Th P + Tl
    k >>= LOG_N  # q
    k += 1023 + 60 if low else 1023
    k <<= 52
    S = k.view(np.float64)
    Th *= S
    P *= S
    if low:
        Th *= 2.0**-60
        P *= 2.0**-60
    return Th, P, d


def _sum_doubles_dd(a, stop, lo=None):
    """Pairwise sum along axis 1 of binary64 values carried as dd (TwoSum at every node, the low parts added in
    binary64), down to width ``stop``: (hi, lo, levels). ``lo``: low parts already carried with ``a``."""
    lo = np.zeros_like(a) if lo is None else lo
    depth = 0
    while a.shape[1] > stop:
        w = a.shape[1]
        k = w // 2
        x, y = a[:, :k], a[:, k:2 * k]
        s, e = two_sum(x, y)
        lo2 = (lo[:, :k] + lo[:, k:2 * k]) + e
        if w % 2:
            s = np.concatenate([s, a[:, -1:]], axis=1)
            lo2 = np.concatenate([lo2, lo[:, -1:]], axis=1)
        a, lo = s, lo2
        depth += 1
    return a, lo, depth


def _sum_plain(b, stop):
    """Pairwise binary64 sum along axis 1 down to width ``stop``: (partials, levels)."""
    depth = 0
    while b.shape[1] > stop:
        w = b.shape[1]
        k = w // 2
        s = b[:, :k] + b[:, k:2 * k]
        if w % 2:
            s = np.concatenate([s, b[:, -1:]], axis=1)
        b = s
        depth += 1
    return b, depth


# --------------------------------------------------------------------------------------------------
# rows


class DDRows:
    """Steps 1-7 for the rows of an ``oracles.fast._Rows`` (m, jmax, single): R~, err_R, L~, err_L per row."""

    def __init__(self, st, quick=False):
        self.st = st
        self.quick = quick
        M, C = st.M, st.C
        if quick:
            Rh, Rl, err = self._quick_sums()
            self._finish(Rh, Rl, err)
            return
        Rh = np.empty(M)
        Rl = np.empty(M)
        A = np.empty(M)
        K = min(C, _CHUNK)  # columns per chunk: a block of about _CHUNK elements stays in cache
        step = max(1, _CHUNK // K)
        nk = -(-C // K)
        depth = depth1 = 0
        W = min(K, _PARTIAL)
        for a in range(0, M, step):
            b = min(M, a + step)
            ph = np.zeros((b - a, nk * W))  # each chunk's partial sums, W wide (zeros are exact padding)
            pl = np.zeros((b - a, nk * W))
            pa = np.empty((b - a, nk))
            for k, c0 in enumerate(range(0, C, K)):
                c1 = min(C, c0 + K)
                Eh, El, dc = self._terms(exp_dd, a, b, c0, c1)
                pa[:, k] = np.einsum("ij,ij->i", dc, Eh)
                h, lo, d1 = _sum_nonneg(Eh, El, W)
                ph[:, k * W:k * W + h.shape[1]] = h
                pl[:, k * W:k * W + h.shape[1]] = lo
                depth1 = max(depth1, d1)
            h, lo, d2 = _sum_nonneg(ph, pl)
            Rh[a:b], Rl[a:b] = h[:, 0], lo[:, 0]
            depth = max(depth, depth1 + d2)
            A[a:b] = -pa.sum(axis=1)
        R = Rh + Rl
        sigma = depth * 2.0**-104.4 * (1 + depth * 2.0**-104)
        A_up = (A * (1 + 2.0**-30) + C * 2.0**-1060) * (1 + EPS_E + RHO_R * 2.0**10)
        R_up = R * (1 + 2.0**-80) + C * TAU_E
        err = (sigma * R / (1 - sigma) + (EPS_E + RHO_R) * R_up + RHO_R * A_up + C * TAU_E) * INFLATE + FLOOR64
        self._finish(Rh, Rl, err)

    def _terms(self, exp_fn: Any, a: int, b: int, c0: int, c1: int) -> tuple:
        """``exp_fn`` (exp_dd or exp_quick) of the exact d = x - m (double-double, step 1) over rows a:b and
        classes c0:c1, with each row maximum's own term set to 0 (R sums the others): exp_fn's three arrays."""
        st = self.st
        dh, dl = two_sum(st.rows[a:b, c0:c1], -st.m[a:b, None])
        P, Q, extra = exp_fn(dh, dl)
        jm = st.jmax[a:b]
        here = np.nonzero((jm >= c0) & (jm < c1))[0]
        P[here, jm[here] - c0] = 0.0
        Q[here, jm[here] - c0] = 0.0
        return P, Q, extra

    def _quick_sums(self):
        """Step Q2: (R~, err_R) from ``exp_quick``'s parts: A split exactly at a power of two per chunk and row
        (the high parts summed exactly, the residues added to B), B summed pairwise in binary64."""
        st = self.st
        rows, M, C = st.rows, st.M, st.C
        K = min(C, _CHUNK)
        step = max(1, _CHUNK // K)
        nk = -(-C // K)
        W = min(K, _PARTIAL)
        Rh, Rl, resid = np.empty(M), np.empty(M), np.zeros(M)
        depth_a = depth_b = 0
        for a in range(0, M, step):
            b = min(M, a + step)
            pq = np.zeros((b - a, nk))  # each chunk's exact sum of high parts
            pb = np.zeros((b - a, nk * W))
            db = 0
            for k, c0 in enumerate(range(0, C, K)):
                c1 = min(C, c0 + K)
                EA, EB, _ = self._terms(exp_quick, a, b, c0, c1)
                # sigma = 2**e >= (c1 - c0) max A: q = (sigma + A) - sigma is A rounded to a multiple of
                # sigma 2**-52 (exactly), and any sum of the row's q is exact (below 2 sigma)
                top = EA.max(axis=1)
                _, e = np.frexp(top * (c1 - c0))
                sigma = np.where(top > 0, np.ldexp(1.0, e), 0.0)[:, None]  # no A: q = A = 0, nothing to charge
                q = EA + sigma
                q -= sigma
                pq[:, k] = q.sum(axis=1)
                resid[a:b] += (c1 - c0) * sigma[:, 0] * 2.0**-53  # >= sum |A - q|
                np.subtract(EA, q, out=EA)
                EA += EB  # EB + (EA - q)
                bb, d2 = _sum_plain(EA, W)
                pb[:, k * W:k * W + bb.shape[1]] = bb
                db = max(db, d2)
            h, lo, d1 = _sum_doubles_dd(pq, 1)
            bb, d2 = _sum_plain(pb, 1)
            depth_a, depth_b = max(depth_a, d1), max(depth_b, db + d2)
            h, lo = fast_two_sum(h[:, 0], lo[:, 0])  # exact (|lo| <= depth u h), a normalized dd for the dd add
            Rh[a:b], Rl[a:b] = dd_add(h, lo, bb[:, 0], np.zeros(b - a))
        R = Rh + Rl
        R_up = R * (1 + 2.0**-50) + C * TAU_E
        # sum |d_j| e_j <= max |d_j| R (the clamped arguments: at most 746)
        with np.errstate(all="ignore"):
            dmax = np.minimum(746.0, (st.m - rows.min(axis=1)) * (1 + 2.0**-50))
        A_up = dmax * R_up
        sig = depth_a**2 * 2.0**-104 + (depth_b + 1) * 2.0**-52 * 2.0**-15.3 + DELTA_ADD
        err = (((EPS_Q + sig + RHO_Q0) * R_up + RHO_Q1 * A_up + (depth_b + 2) * 2.0**-52 * resid + C * TAU_E)
               * INFLATE + FLOOR64)
        return Rh, Rl, err

    def _finish(self, Rh, Rl, err):
        st = self.st
        rows, M = st.rows, st.M
        err[st.single] = 0.0
        # step 7b: a row whose other entries all lie below m - 10**4 has 0 < R < C e**-10000 < 2**-1075: R~ = 0
        # with err_R = 2**-1074; its tiny outputs (-L, and L - d_t at t = jmax) are encoded as exact zeros that
        # certify64 rounds by their known sign (log_softmax -0.0, cross_entropy +-0.0)
        self.far = np.zeros(M, dtype=bool)
        for r in np.nonzero((Rh == 0) & ~st.single)[0]:
            d = rows[r] - st.m[r]
            d[st.jmax[r]] = -np.inf
            if (d < FAR).all():
                self.far[r] = True
                err[r] = 5e-324
        self.Rh, self.Rl, self.err_R = Rh, Rl, err
        Lh = np.empty(M)
        Ll = np.empty(M)
        errL = np.empty(M)
        for r in range(M):
            Lh[r], Ll[r], errL[r] = _log1p_dd(float(Rh[r]), float(Rl[r]), float(err[r]))
        self.Lh, self.Ll, self.err_L = Lh, Ll, errL

    def d(self, a: int, b: int) -> DD:
        """(dh, dl) of rows a..b (step 1)."""
        return two_sum(self.st.rows[a:b], -self.st.m[a:b, None])

    def L_interval(self) -> tuple[A, A, NDArray[bool_]]:
        """(L_dn, L_up, open) binary64 with L_dn <= L <= L_up, and L > L_dn where ``open`` (step 13)."""
        with np.errstate(all="ignore"):
            t_up = self.Lh + (self.Ll + self.err_L)
            t_dn = self.Lh + (self.Ll - self.err_L)
            L_up = t_up + np.abs(t_up) * 2.0**-51 + 5e-324
            L_dn = np.maximum(t_dn - np.abs(t_dn) * 2.0**-51 - 5e-324, 0.0)
        return L_dn, L_up, (L_dn == 0) & ~self.st.single  # L > 0 when two entries are finite


def _log1p_dd(rh, rl, err):
    """Step 7 for one row: (Lh, Ll, err_L) or (nan, nan, inf) when the ball is too wide or not finite."""
    if not (math.isfinite(rh) and math.isfinite(rl) and math.isfinite(err)):
        return math.nan, math.nan, math.inf
    if rh == 0 and rl == 0 and err == 0:
        return 0.0, 0.0, 0.0
    mid = libmp.mpf_add(libmp.from_float(rh), libmp.from_float(rl), 0)
    try:
        ball = Ball(mid, libmp.from_float(err)).log1p(L_PREC)
    except ArithmeticError:
        return math.nan, math.nan, math.inf
    lh = libmp.to_float(ball.mid, rnd=_RN)
    res = libmp.mpf_sub(ball.mid, libmp.from_float(lh), 0)
    ll = libmp.to_float(res, rnd=_RN)
    rad = libmp.to_float(ball.rad, rnd=libmp.round_ceiling)
    return lh, ll, (rad + U * abs(ll)) * INFLATE + FLOOR64


def _bound(x):
    x = np.asarray(x, dtype=np.float64)
    return x * INFLATE + FLOOR64


def _row_blocks(M, C):
    """(a, b) blocks of rows of about 2**16 elements: bounded temporaries for the elementwise outputs."""
    step = max(1, (1 << 16) // max(C, 1))
    for a in range(0, M, step):
        yield a, min(M, a + step)


def log_softmax(dd: DDRows) -> tuple:
    """(hi, lo, B) of every log_softmax output (step 8), shaped (M, C), and step 13's second enclosure."""
    st = dd.st
    M, C = st.M, st.C
    yh, yl, B, dh, dl = (np.empty((M, C)) for _ in range(5))
    for a, b in _row_blocks(M, C):
        dh[a:b], dl[a:b] = dd.d(a, b)
        yh[a:b], yl[a:b] = dd_add(dh[a:b], dl[a:b], -dd.Lh[a:b, None], -dd.Ll[a:b, None])
        B[a:b] = _bound(dd.err_L[a:b, None] + DELTA_ADD * np.abs(yh[a:b]) / (1 - DELTA_ADD))
    far = np.nonzero(dd.far)[0]
    for arr in (yh, yl, B):
        arr[far, st.jmax[far]] = 0.0  # -L in (-2**-1075, 0): -0.0 by its sign (step 7b)
    L_dn, L_up, op = dd.L_interval()
    shape = dh.shape
    return yh, yl, B, (dh, dl, np.broadcast_to(-L_up[:, None], shape), np.broadcast_to(-L_dn[:, None], shape),
                       None, np.broadcast_to(op[:, None], shape))


def logsumexp(dd: DDRows) -> tuple:
    """(hi, lo, B) per row (step 8)."""
    st = dd.st
    zh, zl = dd_add(st.m, np.zeros_like(st.m), dd.Lh, dd.Ll)
    L_dn, L_up, op = dd.L_interval()
    return (zh, zl, _bound(dd.err_L + DELTA_ADD * np.abs(zh) / (1 - DELTA_ADD)),
            (st.m, np.zeros_like(st.m), L_dn, L_up, op, None))


def softmax(dd: DDRows) -> tuple[A, A, A]:
    """(hi, lo, B) of every softmax output (step 9), shaped (M, C)."""
    st = dd.st
    M, C = st.M, st.C
    Dh, Dl = dd_add(np.ones(M), np.zeros(M), dd.Rh, dd.Rl)
    err_D = dd.err_R + DELTA_ADD * Dh
    D_lo = (Dh - err_D) * (1 - 2.0**-50)
    eps_D = err_D / D_lo
    sh_all, sl_all, B_all = (np.empty((M, C)) for _ in range(3))
    for a, b in _row_blocks(M, C):
        dh, dl = dd.d(a, b)
        Eh, El, _ = exp_dd(dh, dl)
        idx = (np.arange(b - a), st.jmax[a:b])
        Eh[idx] = 1.0
        El[idx] = 0.0
        sh, sl = dd_div(Eh, El, Dh[a:b, None], Dl[a:b, None])
        eps = EPS_E + RHO_R * (1 + np.abs(dh))
        eps[idx] = 0.0
        tot = DELTA_DIV + eps + eps_D[a:b, None]
        B = _bound(np.abs(sh) * tot / (1 - tot) + (TAU_E + FLOOR64) / D_lo[a:b, None])
        zero = ~(dh >= EXP_MIN)  # e_j < 2**-1075 (or exactly 0): s_j < 2**-1075 rounds to +0.0, as 0 does
        sh_all[a:b] = np.where(zero, 0.0, sh)
        sl_all[a:b] = np.where(zero, 0.0, sl)
        B_all[a:b] = np.where(zero, 0.0, B)
    return sh_all, sl_all, B_all


def class_values(dd: DDRows, rows: A, tk: NDArray[Any], wt: A, weighted: bool, name: str, reduced: bool = False,
                 alt: bool = False) -> tuple:
    """(hi, lo, err) of every row's weighted loss term (step 10); err = inf where undecidable. ``reduced``: the
    terms will be summed, so a tiny term (step 7b) is charged 2**-1074 instead of being encoded as exact 0.
    ``alt``: add step 13's second enclosure where there is one."""
    M = rows.shape[0]
    r = np.arange(M)
    live = wt != 0
    if name == "cross_entropy":
        assert dd is not None
        dth, dtl = two_sum(rows[r, tk], -dd.st.m)
        vh, vl = dd_add(dd.Lh, dd.Ll, -dth, -dtl)
        err = dd.err_L + DELTA_ADD * np.abs(vh) / (1 - DELTA_ADD)
        single = dd.st.single
        vh, vl, err = np.where(single, 0.0, vh), np.where(single, 0.0, vl), np.where(single, 0.0, err)
        if weighted:
            ok = (np.abs(vh) <= BIG) & (np.abs(wt) <= BIG)
            ah, al = dd_mul_d(vh, vl, wt)
            err = np.abs(wt) * err + DELTA_MUL * np.abs(ah) * (1 + 2.0**-40) + np.where(
                np.abs(ah) < TINY_PROD, FLOOR64, 0.0)
            err = np.where(ok, err, np.inf)
            vh, vl = ah, al
        err = np.where(err > 0, _bound(err), 0.0)
        tiny = dd.far & (tk == dd.st.jmax)  # v = L in (0, 2**-1075) (step 7b)
        vh, vl = np.where(tiny, 0.0, vh), np.where(tiny, 0.0, vl)
        err = np.where(tiny, 5e-324 if reduced else 0.0, err)
    else:
        x = -rows[r, tk]
        if weighted:
            ah, al = two_prod(wt, x)
            ok = (np.abs(x) <= BIG) & (np.abs(wt) <= BIG)
            err = np.where(ok, np.where(np.abs(ah) < TINY_PROD, FLOOR64, 0.0), np.inf)
            vh, vl = ah, al
        else:
            vh, vl, err = x, np.zeros(M), np.zeros(M)
    vh = np.where(live, vh, 0.0)
    vl = np.where(live, vl, 0.0)
    err = np.where(live, err, 0.0)
    if alt and name == "cross_entropy" and not weighted:
        # step 13: -d_t exact plus L's interval (decides a tie of -d_t shifted by a tiny L)
        L_dn, L_up, op = dd.L_interval()
        return vh, vl, err, (np.where(live, -dth, 0.0), np.where(live, -dtl, 0.0), np.where(live, L_dn, 0.0),
                             np.where(live, L_up, 0.0), op & live, None)
    return vh, vl, err


def reduce_dd(vh: A, vl: A, err: A, wt: A, kept: NDArray[bool_], reduction: str,
              weighted: bool) -> tuple | None:
    """(hi, lo, B) of the sum or mean (step 11), or None."""
    if not (np.isfinite(vh).all() and np.isfinite(vl).all() and np.isfinite(err).all()):
        return None
    try:
        parts = vh.tolist() + vl.tolist()
        Th = math.fsum(parts)
        Tl = math.fsum(parts + [-Th])
        err_T = math.fsum(err.tolist()) * (1 + 2.0**-40) + 2 * U * abs(Tl)
        if reduction == "sum":
            return Th, Tl, float(_bound(err_T))
        if weighted:
            ws = wt[kept].tolist()
            Wh = math.fsum(ws)
            Wl = math.fsum(ws + [-Wh])
        else:
            Wh, Wl = float(np.count_nonzero(kept)), 0.0
    except OverflowError:
        return None
    if Wh == 0 or not math.isfinite(Wh):
        return None
    err_W = 2 * U * abs(Wl)
    a = np.array
    qh_a, ql_a = dd_div(a([Th]), a([Tl]), a([Wh]), a([Wl]))
    qh, ql = float(qh_a[0]), float(ql_a[0])
    W_lo = abs(Wh) * (1 - 2.0**-50) - err_W
    if W_lo <= 0:
        return None
    B = (err_T + abs(Th) * (1 + 2.0**-50) * err_W / W_lo) / W_lo + DELTA_DIV * abs(qh) * (1 + 2.0**-40)
    if abs(qh) < TINY_PROD:
        B += FLOOR64
    return qh, ql, float(_bound(B))


# --------------------------------------------------------------------------------------------------
# certification (step 12)


def certify64(hi: A, lo: A, bound: A, sign: NDArray[Any] | None = None) -> tuple[A, NDArray[bool_]]:
    """(values, ok): where ok, ``values`` is RN(z) into binary64 for every real z with |z - (hi + lo)| <= bound.
    ``sign`` (+1, -1, 0 per element): what the caller knows of z's sign (needed for a zero result)."""
    B = np.asarray(bound, dtype=np.float64)
    return certify64_offsets(hi, lo, -B, B, sign, exact=B == 0)


def certify64_offsets(hi: A, lo: A, off_lo: A, off_hi: A, sign: NDArray[Any] | None = None,
                      open_lo: NDArray[bool_] | None = None, open_hi: NDArray[bool_] | None = None,
                      exact: NDArray[bool_] | None = None) -> tuple[A, NDArray[bool_]]:
    """(values, ok): where ok, ``values`` is RN(z) into binary64 for every real z in [hi + lo + off_lo,
    hi + lo + off_hi] (off_lo <= off_hi, binary64), the interval open at its lower (upper) end where ``open_lo``
    (``open_hi``). ``exact``: where z = hi + lo exactly."""
    hi = np.asarray(hi, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    a = np.asarray(off_lo, dtype=np.float64)
    b = np.asarray(off_hi, dtype=np.float64)
    with np.errstate(all="ignore"):
        c, r = two_sum(hi, lo)
        finite = (np.isfinite(c) & np.isfinite(r) & np.isfinite(a) & np.isfinite(b) & np.isfinite(hi)
                  & np.isfinite(lo) & (a <= b))
        c = np.where(finite, c, 0.0)
        r = np.where(finite, r, 0.0)
        S = np.where(np.abs(c) < 2.0**-800, 2.0**200, 1.0)
        up = np.nextafter(c, np.inf)
        dn = np.nextafter(c, -np.inf)
        h_up = (up - c) * S * 0.5
        h_dn = (c - dn) * S * 0.5
        h_up = np.where(np.isinf(up), h_dn, h_up)
        h_dn = np.where(np.isinf(dn), h_up, h_dn)
        rs = r * S
        # a tie (r = +-h) with the whole offset on one side of it rounds to the neighbour on that side: centre on
        # that neighbour instead (the tie is then the neighbour's own half gap, reached from inside)
        oh = np.zeros(c.shape, dtype=bool) if open_hi is None else np.asarray(open_hi)
        ol = np.zeros(c.shape, dtype=bool) if open_lo is None else np.asarray(open_lo)
        to_dn = (rs == -h_dn) & ((b < 0) | (oh & (b <= 0))) & np.isfinite(dn)
        to_up = (rs == h_up) & ((a > 0) | (ol & (a >= 0))) & np.isfinite(up) & ~to_dn
        if to_dn.any() or to_up.any():
            dn2 = np.nextafter(dn, -np.inf)
            up2 = np.nextafter(up, np.inf)
            rs = np.where(to_dn, h_dn, np.where(to_up, -h_up, rs))
            h_up, h_dn = (np.where(to_dn, h_dn, np.where(to_up, np.where(np.isinf(up2), h_up, (up2 - up) * S * 0.5),
                                                           h_up)),
                          np.where(to_up, h_up, np.where(to_dn, np.where(np.isinf(dn2), h_dn, (dn - dn2) * S * 0.5),
                                                         h_dn)))
            c = np.where(to_dn, dn, np.where(to_up, up, c))
        # z - c = r + off: rounds to c iff -h_dn < r + off_lo and r + off_hi < h_up; g = h - (+-r) >= 0 is
        # evaluated with one rounding and lowered by 2**-51 relative (a lower bound; exactly 0 at a tie, so a
        # strictly negative offset still decides it)
        g_up = h_up - rs
        g_dn = h_dn + rs
        g_up = g_up - np.abs(g_up) * 2.0**-51
        g_dn = g_dn - np.abs(g_dn) * 2.0**-51
        bs, nas = b * S, -(a * S)
        fits_hi = bs < g_up
        fits_lo = nas < g_dn
        if open_hi is not None:
            fits_hi = fits_hi | (np.asarray(open_hi) & (bs <= g_up))
        if open_lo is not None:
            fits_lo = fits_lo | (np.asarray(open_lo) & (nas <= g_dn))
        fits = fits_hi & fits_lo
        if sign is None:
            sgn = np.zeros(c.shape, dtype=np.int8)
        else:
            sgn = np.broadcast_to(np.asarray(sign), c.shape)
        zero_ok = (c != 0) | (sgn != 0)
        values = np.where(c == 0, np.where(sgn < 0, -0.0, 0.0), c)
        ok = finite & fits & zero_ok
        if exact is not None:
            ex = finite & np.asarray(exact)
            # an exact zero is +0.0, except that a value known to be negative (step 7b's -L) is -0.0
            values = np.where(ex, np.where(c == 0, np.where(sgn < 0, -0.0, 0.0), c), values)
            ok = ok | ex
    return values, ok
