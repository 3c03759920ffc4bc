"""Detection power: the zoo (lossproof/zoo) run through the battery that ``lossproof check`` runs, beside the usual
check.

``run_property`` runs one property of the battery (agreement, no overflow, the special-value table) for one
function in one format, in process, with the pieces ``lossproof check`` uses: the same case
(``lossproof.cases.user_cases``), strategies (``lossproof.problems``), restriction to the parameters the function
takes (``lossproof.cases.restrict``), measurement and verdicts (``lossproof.measure``, the pass line of
``lossproof.judge``), budgets (``lossproof.budget.Budget``: the ci profile's example counts, its 60 s search safety
net and 10 s shrink budget) and the special-value table (``lossproof.specials``). In process because the detection
table needs what pytest does not hand back: the time to the first failure and the minimal input. A member's Hypothesis
run is derandomized (as under the ci profile); ``seed`` gives another sequence (the controls are run under several).

``usual_check`` is what the ecosystem does instead: torch.testing.assert_close, default tolerances, of the
function against torch's own loss on samples like PyTorch's OpInfo ones (uniform [-9, 9), shapes up to (5, 5)),
values and (for torch functions) gradients.

``lossproof detect`` prints the table (each member: caught by lossproof? which property, time to the first
failure, minimal input; caught by assert_close?; each tool's kill rate and median time to detection; the
controls' false alarms) and with ``--json PATH`` writes it as data for the report (atomically).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

import oracles
from oracles.codec import flat, float_tree
from reports.reproducers import compact_input
from subjects import deviations
from subjects.torch_subject import dtype_of, function, upstream
from subjects.user import UserSubject, accepted_parameters

from . import search as searches
from .budget import Budget
from .cases import NotSupported, restrict, user_cases
from .judge import UPSTREAM_FRAMEWORKS, explained_together, meets
from .measure import exact_gradient, measure
from .problems import finite_except_masks
from .specials import CASES as SPECIAL_VALUES
from .verdicts import passes

PROPERTIES = ("agreement", "no_overflow", "special_values")

@dataclass
class Outcome:
    """One property run: whether it failed (caught), when, and on what."""

    prop: str
    caught: bool
    seconds_to_failure: float | None  # from the start of this property's run to its first failure
    seconds: float  # the whole run, shrinking included
    measured: int  # examples (or table rows) actually measured
    minimal: dict | None = None  # the minimal failing input (the one Hypothesis reports), exact values
    message: str | None = None  # the failure report's first lines
    unsupported: str | None = None  # the function raised on some inputs (a capability it lacks)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["minimal"] = float_tree(self.minimal)
        return d


def case_for(member, device: str = "cpu"):
    """The suite's case for a zoo member: the same one ``lossproof check LOSS TARGET --dtype FMT`` builds."""
    user = UserSubject(member.loss, member.target, member.framework, member.fn, accepted_parameters(member.fn))
    for c in user_cases(user, False):
        if c.fmt == member.fmt and c.device == device:
            if c.skip:
                raise ValueError(f"{member.name}: {c.skip}")
            return c
    raise ValueError(f"{member.name}: no case in {member.fmt} on {device}")


def _short(message: str, lines: int = 12) -> str:
    return "\n".join(str(message).splitlines()[:lines])


def _searched(prop, case, seed=None, examples=None, search=None, shrink=None, edges=True,
              strict=False) -> Outcome:
    """lossproof.search's search of ``prop`` for one case, the same one the battery runs (so the same derandomized
    examples as ``lossproof check``), with its failure caught: the minimal input is the last failing one, since
    Hypothesis only tries candidates smaller than its current best and replays the smallest last."""
    run = searches.search(prop, case, examples=examples, seed=seed, budget=Budget(search, shrink), edges=edges,
                          strict_shared=strict)
    t0 = time.monotonic()
    message = run.outcome()
    st = run.state
    caught = message is not None
    return Outcome(prop, caught, st["first"] if caught else None, time.monotonic() - t0, st["measured"],
                   st["last_fail"] if caught else None, _short(message) if caught else None, st["unsupported"])


def agreement(case, seed=None, examples=None, search=None, shrink=None, edges=True, strict=False) -> Outcome:
    """the battery's agreement property for one case: every element and gradient component at least stable
    (finite inputs and -inf masks gate; other non-finite inputs are reported, as without --strict). ``edges``:
    the edge problems first (lossproof.edges; the same whatever the seed, so a run under several seeds needs
    them once)."""
    return _searched("agreement", case, seed, examples, search, shrink, edges, strict)


def no_overflow(case, seed=None, examples=None, search=None, shrink=None, edges=True, strict=False) -> Outcome:
    """the battery's no-overflow property for one case: a finite result and gradient wherever the
    correctly rounded exact one is finite (finite inputs); ``edges`` as for ``agreement``."""
    return _searched("no_overflow", case, seed, examples, search, shrink, edges, strict)


def special_values(case, seed=None, examples=None, search=None, shrink=None, edges=True, strict=False) -> Outcome:
    """the battery's special-value test for one case: every gating row of the special-value table (finite inputs
    and -inf masks in the softmax family) gives the exact special value; the first failing row is the minimal
    input. Deterministic: ``seed``, the budgets and ``edges`` do not apply."""
    t0 = time.monotonic()
    measured, unsupported = 0, None
    for row_id, name, kwargs, _want in SPECIAL_VALUES:
        if name != case.loss:
            continue
        kw = restrict(case, kwargs)
        if kw is None or not finite_except_masks(case.loss, kw):
            continue  # reported, not gating, without --strict
        try:
            values, _ = case.call(kw)
        except NotSupported as e:
            unsupported = str(e)
            continue
        except (ValueError, RuntimeError) as e:
            values = [f"raised {type(e).__name__}: {e}"]
        measured += 1
        exact = [e.to(case.fmt) for e in flat(oracles.REGISTRY[case.loss](**kw))]
        devs = deviations.matching(case.subject, case.loss, kw, case.fmt)
        if len(values) == len(exact) and all(isinstance(y, float) for y in values):
            m = measure(case.subject, case.loss, case.fmt, case.device, kw, values, None)
            # as the battery's special-values test: passed, or every failing element within a deviation's scope
            if passes(m.verdict) or explained_together(devs, m, kw, values) is not None:
                continue
        elif any(d.documented_output is not None and all(isinstance(y, float) and d.documented_output(y)
                                                         for y in values) for d in devs):
            continue
        dt = time.monotonic() - t0
        return Outcome("special_values", True, dt, dt, measured, kw,
                       f"{case.id} {row_id}: got {values}, exact {exact}", unsupported)
    return Outcome("special_values", False, None, time.monotonic() - t0, measured, None, None, unsupported)


RUNNERS = {"agreement": agreement, "no_overflow": no_overflow, "special_values": special_values}


def fails_on(case, prop: str, kwargs: dict) -> bool:
    """Whether ``prop`` fails for ``case`` on this one input (a reported minimal input, re-checked): agreement,
    an element or gradient component below the pass line on gating inputs; no_overflow and special_values, a
    non-finite result (or gradient) where the exact one is finite, or a result that misses the exact special
    value."""
    values, grads = case.call(kwargs)
    up = upstream(len(values)) if case.framework in UPSTREAM_FRAMEWORKS else None
    if prop == "agreement":
        m = measure(case.subject, case.loss, case.fmt, case.device, kwargs, values, grads, upstream=up,
                    go_on=lambda mv: meets(case, mv))
        return finite_except_masks(case.loss, kwargs) and not meets(case, m)
    if prop == "special_values":
        if not all(isinstance(y, float) for y in values):
            return True
        return not passes(measure(case.subject, case.loss, case.fmt, case.device, kwargs, values, None).verdict)
    if prop == "no_overflow":
        result = oracles.REGISTRY[case.loss](**kwargs)
        if any(not math.isfinite(y) and math.isfinite(z.to(case.fmt)) for y, z in zip(values, flat(result))):
            return True
        if grads is not None:
            gz = exact_gradient(case.loss, kwargs, result, len(grads), up)
            return any(not math.isfinite(y) and math.isfinite(z.to(case.fmt)) for y, z in zip(grads, gz))
        return False
    raise ValueError(f"unknown property {prop!r}")


def run_property(member, prop: str, **kw) -> Outcome:
    """One property of the battery for one zoo member (or control) in its format."""
    if prop not in RUNNERS:
        raise ValueError(f"unknown property {prop!r}; expected one of {', '.join(RUNNERS)}")
    # a member whose mistake torch shares (a documented behaviour of torch's) is caught under --strict, as a user
    # who wants better than torch would run it
    kw.setdefault("strict", getattr(member, "strict", False))
    return RUNNERS[prop](case_for(member), **kw)


def run_battery(member, **kw) -> list:
    """The properties in the order ``lossproof check`` runs them, stopping at the first that fails (the time
    to detection is the time until then). Returns the outcomes run."""
    out = []
    for p in PROPERTIES:
        o = run_property(member, p, **kw)
        out.append(o)
        if o.caught:
            break
    return out


# -------------------------------------------------------------------------------------------------------------
# the usual check: torch.testing.assert_close against torch's own loss on OpInfo-like samples


def _samples(loss, dtype, gen):
    """(keyword arguments) samples like PyTorch's OpInfo sample inputs: floating inputs uniform in [-9, 9)
    (make_tensor's default range for these ops), probabilities uniform in [0, 1), shapes up to (5, 5), each
    reduction."""
    def U(*shape):
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * 18 - 9).to(dtype)

    def P(*shape):
        return torch.rand(shape, generator=gen, dtype=torch.float64).to(dtype)

    S = 5
    out = []
    if loss in ("sigmoid", "logsigmoid", "softplus"):
        out += [{"input": U()}, {"input": U(S)}, {"input": U(S, S)}]
        if loss == "softplus":
            out += [{"input": U(S, S), "beta": 2.0}]
    elif loss in ("softmax", "log_softmax"):
        out += [{"input": U(S), "dim": 0}, {"input": U(S, S), "dim": 1}, {"input": U(S, S), "dim": 0},
                {"input": U(S, S), "dim": -1}]
    elif loss == "logsumexp":
        out += [{"input": U(S), "dim": 0}, {"input": U(S, S), "dim": 1}, {"input": U(S, S), "dim": 0},
                {"input": U(S, S), "dim": 1, "keepdim": True}]
    elif loss in ("cross_entropy", "nll_loss"):
        for shape in ((S, S), (3, S), (S,)):
            t = torch.randint(0, S, shape[:1] if len(shape) > 1 else (), generator=gen)
            for extra in ({}, {"reduction": "sum"}, {"reduction": "none"}, {"weight": P(S)}, {"ignore_index": 1}):
                out.append({"input": U(*shape), "target": t, **extra})
        if loss == "cross_entropy":
            out.append({"input": U(S, S), "target": torch.softmax(U(S, S).double(), 1).to(dtype)})
            out.append({"input": U(S, S), "target": torch.randint(0, S, (S,), generator=gen), "label_smoothing": 0.1})
    elif loss == "binary_cross_entropy":
        for shape in ((S,), (S, S)):
            for extra in ({}, {"reduction": "sum"}, {"reduction": "none"}, {"weight": P(*shape)}):
                out.append({"input": P(*shape), "target": P(*shape), **extra})
    elif loss == "binary_cross_entropy_with_logits":
        for shape in ((S,), (S, S)):
            for extra in ({}, {"reduction": "sum"}, {"reduction": "none"}, {"weight": P(*shape)},
                          {"pos_weight": P(shape[-1])}):
                out.append({"input": U(*shape), "target": P(*shape), **extra})
    elif loss == "kl_div":
        for red in ("mean", "sum", "none", "batchmean"):
            out.append({"input": torch.log_softmax(U(S, S).double(), 1).to(dtype),
                        "target": torch.softmax(U(S, S).double(), 1).to(dtype), "reduction": red})
        out.append({"input": torch.log_softmax(U(S, S).double(), 1).to(dtype),
                    "target": torch.log_softmax(U(S, S).double(), 1).to(dtype), "log_target": True,
                    "reduction": "sum"})
    elif loss == "xlogy":
        out += [{"input": U(S), "other": P(S) * 9}, {"input": U(S, S), "other": P(S, S) * 9}]
    else:
        raise ValueError(f"no samples for {loss!r}")
    return out


@dataclass
class UsualOutcome:
    caught: bool
    seconds_to_failure: float | None
    seconds: float
    samples: int  # samples compared
    skipped: int  # samples the function could not take (parameters it lacks, a raised exception)
    message: str | None = None


def usual_check(member, seed: int = 0) -> UsualOutcome:
    """torch.testing.assert_close(member(sample), torch's loss(sample)) with default tolerances for every OpInfo-like
    sample in the member's format, values and (torch members) the gradient of sum(upstream * output)."""
    dtype = dtype_of(member.fmt)
    gen = torch.Generator().manual_seed(seed)
    params = accepted_parameters(member.fn)
    ref = function(member.loss)
    t0 = time.monotonic()
    compared = skipped = 0
    if member.framework == "numpy" and member.fmt == "bfloat16":
        return UsualOutcome(False, None, 0.0, 0, 0, "NumPy has no bfloat16")
    for kw in _samples(member.loss, dtype, gen):
        if params is not None and any(k not in params for k in kw if k not in ("input",)):
            skipped += 1
            continue
        try:
            ref_kw = dict(kw)
            if member.loss == "logsumexp" and "dim" not in ref_kw:
                ref_kw["dim"] = tuple(range(kw["input"].dim()))
            x_ref = kw["input"].clone().requires_grad_(True)
            expected = ref(**{**ref_kw, "input": x_ref})
        except RuntimeError:  # torch's own loss lacks this format on this device ("not implemented for 'Half'")
            skipped += 1
            continue
        try:
            if member.framework == "torch":
                x = kw["input"].clone().requires_grad_(True)
                actual = member.fn(**{**kw, "input": x})
                if not isinstance(actual, torch.Tensor):
                    actual = torch.as_tensor(actual)
            else:
                np_kw = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
                actual = torch.from_numpy(np.asarray(member.fn(**np_kw)))
        except Exception:  # the function does not take this sample: a capability it lacks, not a detection
            skipped += 1
            continue
        compared += 1
        try:
            torch.testing.assert_close(actual.detach().to(expected.dtype).reshape(expected.shape),
                                       expected.detach())
            if member.framework == "torch" and actual.requires_grad and expected.requires_grad:
                up = torch.tensor(upstream(expected.numel()), dtype=expected.dtype).reshape(expected.shape)
                expected.backward(up)
                actual.reshape(expected.shape).backward(up.to(actual.dtype))
                if x.grad is not None:
                    torch.testing.assert_close(x.grad, x_ref.grad)
        except AssertionError as e:
            dt = time.monotonic() - t0
            return UsualOutcome(True, dt, dt, compared, skipped, _short(str(e), 6))
    return UsualOutcome(False, None, time.monotonic() - t0, compared, skipped, None)


# -------------------------------------------------------------------------------------------------------------
# the table


@dataclass
class Record:
    member: dict
    lossproof: dict = field(default_factory=dict)
    usual: dict = field(default_factory=dict)


def detect(members, controls, log=None, shrink=None, edges: bool = True) -> dict:
    """Run the zoo: every member through the battery (check's order, stopping at the first failure) and the
    usual check; every control likewise (a flag is a false alarm). ``edges=False`` leaves the edge problems out
    (what the search finds on its own). Returns the data of the table."""
    records = []
    for group, items in (("member", members), ("control", controls)):
        for m in items:
            outs = run_battery(m, shrink=shrink, edges=edges)
            caught = next((o for o in outs if o.caught), None)
            usual = usual_check(m)
            before = sum(o.seconds for o in outs[:-1])  # properties that passed before the one that failed
            lp = {"caught": caught is not None, "property": caught.prop if caught else None,
                  "seconds_to_failure": (before + caught.seconds_to_failure) if caught else None,
                  "seconds": sum(o.seconds for o in outs),
                  "minimal": float_tree(caught.minimal) if caught else None,
                  "minimal_text": compact_input(caught.minimal) if caught else None,
                  "message": caught.message if caught else None,
                  "expected_property": m.prop,
                  "runs": [o.as_dict() for o in outs]}
            rec = {"kind": group, **m.as_dict(), "lossproof": lp, "usual": asdict(usual)}
            records.append(rec)
            if log:
                log(_row(rec))
    return {"records": records, "summary": summarize(records)}


def summarize(records) -> dict:
    members = [r for r in records if r["kind"] == "member"]
    controls = [r for r in records if r["kind"] == "control"]

    def rate(rs, tool):
        return sum(1 for r in rs if r[tool]["caught"]) / len(rs) if rs else math.nan

    def median(rs, tool):
        ts = [r[tool]["seconds_to_failure"] for r in rs if r[tool]["caught"]]
        return statistics.median(ts) if ts else None

    return {
        "members": len(members),
        "controls": len(controls),
        "lossproof": {"kill_rate": rate(members, "lossproof"), "median_seconds_to_detection":
                      median(members, "lossproof"),
                      "caught": sum(1 for r in members if r["lossproof"]["caught"]),
                      "false_alarms": sum(1 for r in controls if r["lossproof"]["caught"])},
        "usual": {"kill_rate": rate(members, "usual"), "median_seconds_to_detection": median(members, "usual"),
                  "caught": sum(1 for r in members if r["usual"]["caught"]),
                  "false_alarms": sum(1 for r in controls if r["usual"]["caught"])},
    }


def _brief(v, width=70) -> str:
    s = compact_input(v) if v is not None else "-"
    return s if len(s) <= width else s[:width - 3] + "..."


def _row(r) -> str:
    lp, us = r["lossproof"], r["usual"]
    lps = (f"{lp['property']} in {lp['seconds_to_failure']:.1f}s" if lp["caught"] else "not caught")
    uss = (f"caught in {us['seconds_to_failure']:.2f}s" if us["caught"] else
           ("n/a" if us["samples"] == 0 else "missed"))
    return (f"{r['kind']:7} {r['name'][:40]:40} {r['loss'][:20]:20} {r['framework']:5} {r['format']:8} "
            f"| lossproof: {lps:28} | assert_close: {uss:18} | {_brief(lp['minimal'])}")


def format_summary(summary) -> str:
    lp, us = summary["lossproof"], summary["usual"]

    def med(v):
        return "-" if v is None else f"{v:.2f} s"

    def rate(v):  # NaN without members (a run of controls only)
        return "-" if v is None or math.isnan(v) else f"{v:.0%}"

    return "\n".join([
        f"members {summary['members']}, controls {summary['controls']}",
        f"lossproof:    kill rate {rate(lp['kill_rate'])} ({lp['caught']}/{summary['members']}), median time to "
        f"detection {med(lp['median_seconds_to_detection'])}, false alarms {lp['false_alarms']}/{summary['controls']}",
        f"assert_close: kill rate {rate(us['kill_rate'])} ({us['caught']}/{summary['members']}), median time to "
        f"detection {med(us['median_seconds_to_detection'])}, false alarms {us['false_alarms']}/{summary['controls']}",
    ])
