"""Properties beyond agreement, per subject x format x device:

- identity: cross_entropy(x, t, ...) = nll_loss(log_softmax(x), t, ...) for every parameter combination (class
  targets, weights, ignore_index, reductions): both paths held to the stable bound of the exact cross-entropy
  (the nll path only where the format can hold the exact log_softmax it consumes), and whether they agree bit
  for bit is recorded;
- KL/CE equivalence: kl_div(log_softmax(x), p, "batchmean") = cross_entropy(x, p) - H(p), equal gradients with
  respect to x (torch: autograd), and KL = CE for one-hot p;
- no overflow: a finite result and gradient wherever the correctly rounded exact result is finite.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torch.nn.functional as F
from hypothesis import given, note, settings
from hypothesis import strategies as st

import oracles
from lossproof import judge, profiles, search
from lossproof import strategies as S
from lossproof.battery.outcome import Reach, conclude
from lossproof.cases import NotSupported
from lossproof.measure import exact_fraction, measure
from lossproof.problems import finite_except_masks
from lossproof.verdicts import passes
from oracles import bounds
from oracles import extended as X
from oracles.exact import Exact
from oracles.formats import get_format, round_to_format
from subjects import deviations
from subjects.torch_subject import dtype_of

SETTINGS = dict(suppress_health_check=search.SUPPRESSED_HEALTH_CHECKS, database=None, deadline=None,
                phases=search.SEARCH_PHASES)


def _examples():
    p = profiles.current()
    return dict(max_examples=p.identity_examples, derandomize=p.derandomize)


def _class_kwargs(fmt):
    """Class-index problems as the identity compares them: (N, C) input, a (C,) draw made the batch of one row it
    means (a 1-D input reached no comparison: 3 to 6 of 12 draws did under ci, issue 14)."""
    return S.class_problem(fmt, max_classes=512, allow_spatial=False).map(_batched)


def _batched(d):
    kw = {k: v for k, v in d.items() if not k.startswith("_") and k != "label_smoothing"}
    if not isinstance(kw["input"][0], list):
        kw["input"], kw["target"] = [kw["input"]], [kw["target"]]
    return kw


def _prob_kwargs(fmt):
    """Probability-target problems as KL = CE - H compares them: (N, C) input of finite logits (no -inf mask:
    KL's exact value would be of masked log-probabilities), a (C,) draw made the batch of one row."""
    return S.prob_class_problem(fmt, allow_spatial=False, allow_nonfinite=False).map(
        lambda d: {k: ([v] if k in ("input", "target") and not isinstance(d["input"][0], list) else v)
                   for k, v in d.items()})


def _cell(group) -> str:
    c = next(iter(group.values()))
    return f"{c.subject}-{c.fmt}-{c.device}"


def test_cross_entropy_is_nll_of_log_softmax(lossproof_identity_group, lossproof_record, record_property):
    reach = Reach("CE = NLL(log_softmax)", _cell(lossproof_identity_group))
    cross_entropy_is_nll_of_log_softmax(lossproof_identity_group, lossproof_record, reach)
    reach.conclude(record_property)


def cross_entropy_is_nll_of_log_softmax(group, lossproof_record, reach):
    any_case = next(iter(group.values()))
    fmt = any_case.fmt

    @settings(**_examples(), **SETTINGS)
    @given(st.data())
    def check(data):
        kw = data.draw(_class_kwargs(fmt), label="problem")
        reach.drawn(kw)
        x = kw["input"]
        if not isinstance(x[0], list):
            return
        reach.mark("applied")
        note(repr(kw))
        try:
            ce, _ = group["cross_entropy"].call(kw)
            ls, _ = group["log_softmax"].call({"input": x, "dim": 1})
        except NotSupported as e:
            reach.refused(e)
            return
        n, c = len(x), len(x[0])
        ls_rows = [ls[i * c:(i + 1) * c] for i in range(n)]
        nll, _ = group["nll_loss"].call({**kw, "input": ls_rows})
        m1 = measure(any_case.subject, "cross_entropy", fmt, any_case.device, kw, ce, None)
        m2 = measure(any_case.subject, "cross_entropy", fmt, any_case.device, kw, nll, None)
        same = all((a == b) or (math.isnan(a) and math.isnan(b)) for a, b in zip(ce, nll))
        note(f"bit for bit: {same}")
        # a path that misses the pass line may be a documented deviation of that path's function
        dev1 = passes(m1.verdict) or _explained(any_case, "cross_entropy", m1, kw, ce)
        dev2 = (passes(m2.verdict) or _explained(any_case, "nll_loss", m2, {**kw, "input": ls_rows}, nll)
                or _intermediate_overflows(x, ls_rows, fmt))
        lossproof_record(m2, dev2 if isinstance(dev2, str) else None, finite_except_masks("cross_entropy", kw))
        if finite_except_masks("cross_entropy", kw):
            reach.mark("reached")
            assert dev1 and dev2, (
                f"cross_entropy {ce} vs nll_loss(log_softmax) {nll}: {m1.verdict} / {m2.verdict}; "
                f"exact {m1.elements[0].z}")

    check()


def _intermediate_overflows(x, ls_rows, fmt):
    """True when the log_softmax tensor that the nll path consumes cannot hold the exact log_softmax: every
    non-finite entry of the subject's log_softmax at a finite logit is the correct rounding of the exact value
    (beyond the format's largest finite, e.g. x_t - max = -2 max), so nll_loss can only return inf there even
    where the exact cross-entropy (a mean of such terms) is finite. An entry whose exact value is finite in the
    format is the log_softmax's own error, and the identity is held to the bound."""
    bad = [(i, j) for i, row in enumerate(ls_rows) for j, v in enumerate(row)
           if not math.isfinite(v) and math.isfinite(x[i][j])]
    if not bad:
        return False
    exact = oracles.log_softmax(x, dim=1)
    return all(ls_rows[i][j] == exact[i][j].to(fmt) for i, j in bad)


def _explained(case, loss, m, call_kw, values):
    """The id of a documented deviation of ``loss`` that explains measurement ``m`` of the call, or None."""
    d = judge.explained_together(deviations.matching(case.subject, loss, call_kw, case.fmt), m, call_kw, values)
    return None if d is None else d.id


def _entropy(p_rows) -> Exact:
    """H(P) averaged over the rows, exactly: -sum xlogy(p, p) / N."""
    terms = []
    for row in oracles.xlogy(p_rows, p_rows):
        for e in row:
            terms.append(e.special if e.is_special else e.node)
    total = X.total(terms)
    return Exact(X.div(X.neg(total), oracles.expr.as_node(float(len(p_rows)))))


def test_kl_is_cross_entropy_minus_entropy(lossproof_kl_group, record_property):
    reach = Reach("KL = CE - H", _cell(lossproof_kl_group))
    kl_is_cross_entropy_minus_entropy(lossproof_kl_group, reach)
    reach.conclude(record_property)


def kl_is_cross_entropy_minus_entropy(group, reach):
    any_case = next(iter(group.values()))
    fmt = any_case.fmt
    f = get_format(fmt)

    @settings(**_examples(), **SETTINGS)
    @given(st.data())
    def check(data):
        kw = data.draw(_prob_kwargs(fmt), label="problem")
        reach.drawn(kw)
        x, p = kw["input"], kw["target"]
        if not isinstance(x[0], list) or isinstance(x[0][0], list):
            return
        if not (finite_except_masks("cross_entropy", kw) and all(math.isfinite(v) for r in x for v in r)):
            return
        reach.mark("applied")
        try:
            ls, _ = group["log_softmax"].call({"input": x, "dim": 1})
        except NotSupported as e:
            reach.refused(e)
            return
        n, c = len(x), len(x[0])
        ls_rows = [ls[i * c:(i + 1) * c] for i in range(n)]
        if _intermediate_overflows(x, ls_rows, fmt):
            note("the format cannot hold the exact log_softmax kl_div consumes (it rounds to -inf)")
            return
        try:
            kl, _ = group["kl_div"].call({"input": ls_rows, "target": p, "reduction": "batchmean"})
        except NotSupported as e:
            reach.refused(e)
            return
        ce_exact = oracles.cross_entropy(x, p)
        h = _entropy(p)
        if ce_exact.is_special or h.is_special:
            return
        z = Exact(ce_exact.node - h.node)  # KL(P || Q) = H(P, Q) - H(P), exactly
        # bound: the log_softmax path (its steps) then kl_div's pointwise 3 steps and the batch sum, on values
        # of size up to |H(P, Q)| + |H(P)|; K = 8 as everywhere
        S_ = bounds.steps("cross_entropy", c) + bounds.steps("kl_div")
        scale = abs(exact_fraction(ce_exact)) + abs(exact_fraction(h)) + 1
        allow = bounds.K * f.u * (S_ + bounds.ceil_log2(n * c)) * scale
        zf = exact_fraction(z)  # z may be 0 or nearly: a relative enclosure (str(z)) might not be had
        # the correctly rounded value is always right: an exact KL beyond the format's range rounds to inf
        # (float16 logits of 65504 beside zeros: CE - H = 393064.8), which kl_div then returns
        err = (0 if kl[0] == z.to(fmt) else abs(Fraction(kl[0]) - zf) if math.isfinite(kl[0]) else math.inf)
        note(f"kl {kl[0]!r}, exact {float(zf)!r}, error {float(err):.3g}, allowed {float(allow):.3g}")
        reach.mark("reached")
        assert err <= allow, f"kl_div(log_softmax(x), p) = {kl[0]!r}, exact CE - H = {float(zf)!r}"
        if any_case.framework == "torch":
            _same_gradients(any_case, x, p, fmt)

    check()


def _same_gradients(case, x, p, fmt):
    """d/dx kl_div(log_softmax(x), p, batchmean) and d/dx cross_entropy(x, p), both against the exact one."""
    dt = dtype_of(fmt)
    a = torch.tensor(x, dtype=dt, device=case.device, requires_grad=True)
    pt = torch.tensor(p, dtype=dt, device=case.device)
    F.kl_div(F.log_softmax(a, dim=1), pt, reduction="batchmean").backward()
    b = torch.tensor(x, dtype=dt, device=case.device, requires_grad=True)
    F.cross_entropy(b, pt).backward()
    kw = {"input": x, "target": p}
    for g in (a.grad, b.grad):
        grads = g.to(torch.float64).reshape(-1).cpu().tolist()
        exact = oracles.cross_entropy(x, p)
        try:
            ce = exact.to(fmt)
        except oracles.OraclePrecisionError:  # only the gradient components are judged here: any near value does
            ce = round_to_format(float(exact_fraction(exact)), fmt)
        m = measure(case.subject, "cross_entropy", fmt, case.device, kw, [ce], grads)
        bad = [e for e in m.elements if e.kind == "grad" and not passes(e.verdict)]
        assert not bad, f"gradient component {bad[0].index}: {bad[0].y!r} vs exact {bad[0].z} ({bad[0].verdict})"


def test_kl_equals_cross_entropy_for_one_hot(lossproof_kl_group, record_property):
    reach = Reach("KL = CE (one-hot)", _cell(lossproof_kl_group))
    kl_equals_cross_entropy_for_one_hot(lossproof_kl_group, reach)
    reach.conclude(record_property)


def kl_equals_cross_entropy_for_one_hot(group, reach):
    any_case = next(iter(group.values()))
    fmt = any_case.fmt

    @settings(**_examples(), **SETTINGS)
    @given(st.data())
    def check(data):
        c = data.draw(st.integers(2, 64), label="C")
        row, _ = data.draw(S.logit_rows(fmt, c, allow_nonfinite=False), label="row")  # KL = CE needs finite logits
        reach.drawn(row)
        if not all(math.isfinite(v) for v in row):
            return
        reach.mark("applied")
        k = data.draw(st.integers(0, c - 1), label="class")
        p = [[1.0 if j == k else 0.0 for j in range(c)]]
        try:
            ls, _ = group["log_softmax"].call({"input": [row], "dim": 1})
            if _intermediate_overflows([row], [ls], fmt):  # as in KL = CE - H: 0 x (-inf) is kl_div's NaN there
                note("the format cannot hold the exact log_softmax kl_div consumes (it rounds to -inf)")
                return
            kl, _ = group["kl_div"].call({"input": [ls], "target": p, "reduction": "batchmean"})
        except NotSupported as e:
            reach.refused(e)
            return
        m = measure(any_case.subject, "cross_entropy", fmt, any_case.device, {"input": [row], "target": p}, kl,
                    None)
        reach.mark("reached")
        assert passes(m.verdict), f"KL = CE for one-hot P: kl {kl} vs exact {m.elements[0].z} ({m.verdict})"

    check()


def test_no_overflow(lossproof_case, lossproof_notice, lossproof_options, record_property, lossproof_accept_used):
    """Finite result and gradient wherever the correctly rounded exact result is finite (finite inputs); the
    search is lossproof.search's."""
    case = lossproof_case
    run = search.search("no_overflow", case, strict_shared=lossproof_options.strict,
                        accept=lossproof_options.accept)
    run.run_reporting(record_property, lossproof_accept_used)
    lossproof_notice(run.budget.report(case.id))
    conclude(run, case, lossproof_notice)
