"""Which strategy draws the inputs of which loss (``lossproof.strategies``, by the catalogue's ``strategy``), at the
sizes the profile allows, and which drawn inputs gate a run."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from oracles.codec import flat

from . import catalogue, profiles
from . import strategies as S

__all__ = ["problems", "finite_except_masks", "MAX_CLASSES", "strip"]

MAX_CLASSES = 4096  # the default profile reaches 2..4096 classes


def strip(d: dict) -> dict:
    """A drawn problem without its metadata (keys starting with "_": the regime, the structure)."""
    return {k: v for k, v in d.items() if not k.startswith("_")}


def _no_smoothing(d):
    return {k: v for k, v in d.items() if k != "label_smoothing"}


def problems(loss: str, fmt: str, probability_targets: bool = True, *, class_targets: bool = True,
             max_classes: int = MAX_CLASSES,
             max_batch: int = 4, allow_spatial: bool = True, large_share: float | None = None,
             max_elements: int | None = None):
    """Keyword arguments for ``loss`` in ``fmt``: exact values, every regime of NUMERICS.md, metadata stripped.
    Without ``probability_targets`` (a subject that lacks them) cross_entropy draws class targets only, without
    ``class_targets`` (optax's safe_softmax_cross_entropy) probability targets only, so its examples are not spent
    on calls it cannot take. The sizes default to the profile's."""
    prof = profiles.current()
    share = prof.large_share if large_share is None else large_share
    elems = prof.max_elements if max_elements is None else max_elements
    kind = catalogue.get(loss).strategy
    sizes = dict(max_classes=max_classes, max_batch=max_batch, allow_spatial=allow_spatial)
    if kind == "class":
        s = S.class_problem(fmt, max_elements=elems, large_share=share, **sizes)
        if probability_targets:
            p = S.prob_class_problem(fmt, max_elements=elems, large_share=share, **sizes)
            s = st.one_of(s, p) if class_targets else p
    elif kind == "class_index":
        s = S.class_problem(fmt, max_elements=elems, large_share=share, **sizes).map(_no_smoothing)
    elif kind == "binary_probabilities":
        s = S.binary_problem(fmt, logits=False)
    elif kind == "binary_logits":
        s = S.binary_problem(fmt, logits=True)
    elif kind == "kl":
        s = S.kl_problem(fmt, max_classes=min(256, max_classes), max_batch=max_batch, allow_spatial=allow_spatial)
    else:
        s = S.elementwise_problem(fmt, loss, max_classes=max_classes, max_elements=elems, large_share=share)
    return s.map(strip)


def finite_except_masks(loss: str, kwargs: dict) -> bool:
    """Whether a call gates the run without --strict-specials: finite inputs, and -inf masks in the softmax
    family's logits. Other infinities and NaN inputs are checked and reported, and gate only under
    --strict-specials."""
    row_family = catalogue.get(loss).family in ("row", "class")  # -inf masks of logits or log-probabilities
    for key in ("input", "target", "weight", "pos_weight", "other"):
        v = kwargs.get(key)
        if v is None or (key == "target" and catalogue.is_index_target(loss, kwargs)):
            continue
        for x in flat(v):
            if isinstance(x, float) and not math.isfinite(x):
                if x == -math.inf and key == "input" and row_family:
                    continue
                return False
    return True
