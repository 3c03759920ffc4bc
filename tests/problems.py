"""Which strategy draws the inputs of which loss (lossproof.strategies), and which inputs gate the run."""

from __future__ import annotations

import math

from hypothesis import strategies as st

SOFTMAX_FAMILY = ("cross_entropy", "nll_loss", "logsumexp", "softmax", "log_softmax")
MAX_CLASSES = 4096  # the default profile reaches 2..4096 classes


def max_elements() -> int:
    """Elements per example: 4,096 (one 4,096-class row) by default, 20,000 under the thorough profile; the
    exact oracle costs about 0.3 ms per element with its gradient and condition number."""
    from tests import profile

    return 20_000 if profile.name() == "thorough" else 4096


def large_share() -> float:
    """The share of draws with 1,024 classes or more: a twentieth by default (one such example in most tests,
    each costing the oracle a second or two), a fifth under the thorough profile."""
    from tests import profile

    return 0.2 if profile.name() == "thorough" else 0.05


def _strip(d):
    return {k: v for k, v in d.items() if not k.startswith("_")}


def problems(loss: str, fmt: str, probability_targets: bool = True):
    """Keyword arguments for ``loss`` in ``fmt``: exact values, every regime of NUMERICS.md. Without
    ``probability_targets`` (a subject that lacks them, ``tests.cases.unsupported``) cross_entropy draws class
    targets only, so its examples are not spent on calls it cannot take."""
    from lossproof import strategies as S

    if loss == "cross_entropy":
        s = S.class_problem(fmt, max_classes=MAX_CLASSES, max_elements=max_elements(), large_share=large_share())
        if probability_targets:
            s = st.one_of(s, S.prob_class_problem(fmt, max_classes=MAX_CLASSES, max_elements=max_elements(),
                                                  large_share=large_share()))
    elif loss == "nll_loss":
        s = S.class_problem(fmt, max_classes=MAX_CLASSES, max_elements=max_elements(), large_share=large_share()).map(
            lambda d: {k: v for k, v in d.items() if k != "label_smoothing"})
    elif loss == "binary_cross_entropy":
        s = S.binary_problem(fmt, logits=False)
    elif loss == "binary_cross_entropy_with_logits":
        s = S.binary_problem(fmt, logits=True)
    elif loss == "kl_div":
        s = S.kl_problem(fmt)
    else:
        s = S.elementwise_problem(fmt, loss, max_elements=max_elements(), large_share=large_share())
    return s.map(_strip)


def _flat(v):
    return [e for x in v for e in _flat(x)] if isinstance(v, list) else [v]


def finite_except_masks(loss: str, kwargs: dict) -> bool:
    """Whether a case gates the run without --strict: finite inputs, and -inf masks in the softmax family's
    logits. Other infinities and NaN inputs are checked and reported, and gate only under --strict."""
    for key in ("input", "target", "weight", "pos_weight", "other"):
        v = kwargs.get(key)
        if v is None or (key == "target" and loss in ("cross_entropy", "nll_loss") and not isinstance(
                _flat(v)[0] if isinstance(v, list) and v else v, float)):
            continue
        for x in _flat(v):
            if isinstance(x, float) and not math.isfinite(x):
                if x == -math.inf and key == "input" and loss in SOFTMAX_FAMILY:
                    continue
                return False
    return True
