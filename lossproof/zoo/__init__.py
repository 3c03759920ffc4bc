"""The zoo: realistic unstable loss implementations (the mistakes of NUMERICS.md, "Mistakes the suite must
catch") and sound controls, to measure what lossproof catches and what it wrongly flags, the way mutation testing
measures a test suite.

Each ``Member`` names its function, the loss it implements, its framework, the one format it is meant to be
checked in (where its mistake shows), the mistake's category, and the property of the battery expected to catch
it: ``agreement`` (the verdict ladder against the exact oracle), ``no_overflow`` (a finite result and gradient
wherever the exact one is finite) or ``special_values`` (the special-value table's gating rows). Its mistake is
the first line of its docstring. ``gap``, when set, says why the suite does not catch it yet (a known gap,
tracked by tests/meta/test_zoo.py as a strict expected failure, so closing the gap shows).

    lossproof check LOSS lossproof/zoo/torch_members.py:FUNCTION --framework torch --dtype FORMAT
    lossproof detect                     # the detection table: lossproof vs torch.testing.assert_close
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Callable

from . import controls, numpy_members, torch_members

HERE = os.path.dirname(os.path.abspath(__file__))

#: the NUMERICS.md mistakes list, one key per category
CATEGORIES = {
    "no-max-shift": "no max-shift before exp",
    "log-of-softmax": "log(softmax) instead of log_softmax",
    "eps-clipping": "clipping with an eps the format cannot represent",
    "log-sigmoid": "log(sigmoid) and log(1 - sigmoid) instead of log-sigmoid / softplus forms",
    "log1p-exp": "log(1 + exp(x)) instead of a stable softplus",
    "xlogx": "p log p without the 0 log 0 = 0 rule",
    "masking": "fully masked rows and mask constants the format cannot hold",
    "low-precision-reduction": "reductions accumulated in float16 / bfloat16",
    "sigmoid-derivative": "the sigmoid derivative as s (1 - s)",
    "focal-term": "focal terms (1 - p)^gamma at gamma <= 1",
    "label-cast": "integer labels cast to a low-precision float",
    "reduction-denominator": "wrong reduction denominators (weights, ignore_index, batchmean)",
}

PROPERTIES = ("agreement", "no_overflow", "special_values")


@dataclass(frozen=True)
class Member:
    name: str  # unique: function name, with "@format" where one function is in the zoo in two formats
    fn: Callable
    loss: str
    framework: str  # "torch" or "numpy"
    fmt: str
    prop: str  # the property expected to catch it (PROPERTIES); for a control, None
    category: str | None  # a key of CATEGORIES; None for a control
    gap: str | None = None
    strict: bool = False  # its mistake is one torch shares (a documented behaviour): caught under --strict

    @property
    def mistake(self) -> str:
        """The first paragraph of the docstring, on one line: the member's one mistake (or why a control is
        sound)."""
        doc = inspect.getdoc(self.fn) or ""
        return " ".join(doc.split("\n\n")[0].split())

    @property
    def target(self) -> str:
        """The function as ``lossproof check`` names it (its module in the installed package)."""
        module = self.fn.__module__.rsplit(".", 1)[-1]
        return f"lossproof.zoo.{module}:{self.fn.__name__}"

    @property
    def is_control(self) -> bool:
        return self.category is None

    def as_dict(self) -> dict:
        return {"name": self.name, "target": self.target, "loss": self.loss, "framework": self.framework,
                "format": self.fmt, "property": self.prop, "category": self.category, "mistake": self.mistake,
                "gap": self.gap, "strict": self.strict}


def _m(fn, loss, framework, fmt, prop, category, name=None, gap=None, strict=False):
    return Member(name or fn.__name__, fn, loss, framework, fmt, prop, category, gap, strict)


T, N = torch_members, numpy_members


MEMBERS = [
    # no max-shift before exp
    _m(T.softmax_no_shift, "softmax", "torch", "float32", "agreement", "no-max-shift"),
    _m(T.log_softmax_no_shift, "log_softmax", "torch", "float16", "agreement", "no-max-shift"),
    _m(T.cross_entropy_no_shift, "cross_entropy", "torch", "float32", "agreement", "no-max-shift"),
    _m(N.logsumexp_no_shift, "logsumexp", "numpy", "float32", "agreement", "no-max-shift"),
    _m(N.cross_entropy_no_shift, "cross_entropy", "numpy", "float64", "agreement", "no-max-shift",
       name="np_cross_entropy_no_shift"),
    # shifted, but the maximum added back before the target logit is subtracted: a large offset swallows log C
    _m(T.cross_entropy_max_added_back, "cross_entropy", "torch", "float32", "agreement", "no-max-shift"),
    _m(T.cross_entropy_max_added_back, "cross_entropy", "torch", "bfloat16", "agreement", "no-max-shift",
       name="cross_entropy_max_added_back_bf16"),
    # log(softmax)
    _m(T.cross_entropy_log_of_softmax, "cross_entropy", "torch", "float32", "agreement", "log-of-softmax"),
    _m(T.log_softmax_log_of_softmax, "log_softmax", "torch", "float32", "agreement", "log-of-softmax"),
    _m(N.log_softmax_log_of_softmax, "log_softmax", "numpy", "float32", "agreement", "log-of-softmax",
       name="np_log_softmax_log_of_softmax"),
    _m(N.cross_entropy_soft_log_of_softmax, "cross_entropy", "numpy", "float16", "agreement", "log-of-softmax"),
    # eps clipping
    _m(T.bce_clamp_eps, "binary_cross_entropy", "torch", "float16", "agreement", "eps-clipping"),
    _m(T.cross_entropy_log_eps, "cross_entropy", "torch", "float16", "agreement", "eps-clipping"),
    _m(N.bce_clip_eps, "binary_cross_entropy", "numpy", "float32", "special_values", "eps-clipping"),
    _m(N.bce_with_logits_clip_sigmoid, "binary_cross_entropy_with_logits", "numpy", "float16", "agreement",
       "eps-clipping"),
    # log(sigmoid), log(1 - sigmoid)
    _m(T.logsigmoid_log_of_sigmoid, "logsigmoid", "torch", "float32", "agreement", "log-sigmoid"),
    _m(T.bce_with_logits_log_sigmoid, "binary_cross_entropy_with_logits", "torch", "float32", "agreement",
       "log-sigmoid"),
    _m(N.bce_with_logits_log_sigmoid, "binary_cross_entropy_with_logits", "numpy", "float64", "agreement",
       "log-sigmoid", name="np_bce_with_logits_log_sigmoid"),
    _m(N.logsigmoid_log_of_sigmoid, "logsigmoid", "numpy", "float16", "agreement", "log-sigmoid",
       name="np_logsigmoid_log_of_sigmoid"),
    # log(1 + exp(x))
    _m(T.softplus_log1p_exp, "softplus", "torch", "float32", "no_overflow", "log1p-exp"),
    _m(T.softplus_where_branches, "softplus", "torch", "float32", "agreement", "log1p-exp"),
    _m(T.bce_with_logits_log1p_exp, "binary_cross_entropy_with_logits", "torch", "float32", "no_overflow",
       "log1p-exp"),
    _m(N.softplus_log1p_exp, "softplus", "numpy", "float32", "no_overflow", "log1p-exp",
       name="np_softplus_log1p_exp"),
    _m(N.logsigmoid_neg_log1p_exp, "logsigmoid", "numpy", "float64", "no_overflow", "log1p-exp"),
    # 0 log 0
    _m(T.kl_div_plogp, "kl_div", "torch", "float32", "agreement", "xlogx"),
    _m(T.cross_entropy_soft_targets_mul, "cross_entropy", "torch", "bfloat16", "special_values", "xlogx"),
    _m(N.kl_div_plogp, "kl_div", "numpy", "float32", "agreement", "xlogx", name="np_kl_div_plogp"),
    _m(N.xlogy_mul_log, "xlogy", "numpy", "float64", "special_values", "xlogx"),
    # masks
    _m(T.logsumexp_unguarded, "logsumexp", "torch", "float32", "special_values", "masking"),
    _m(T.log_softmax_mask_constant, "log_softmax", "torch", "float32", "special_values", "masking"),
    _m(T.cross_entropy_mask_constant, "cross_entropy", "torch", "bfloat16", "special_values", "masking"),
    _m(N.logsumexp_unguarded, "logsumexp", "numpy", "float64", "special_values", "masking",
       name="np_logsumexp_unguarded"),
    # low-precision reductions
    # (torch's own mean also sums first: torch-ce-sum-overflow, torch-kl_div-sum-overflow; caught under --strict)
    _m(T.cross_entropy_sum_over_n, "cross_entropy", "torch", "float16", "agreement", "low-precision-reduction",
       strict=True),
    _m(T.logsumexp_running_sum, "logsumexp", "torch", "float16", "agreement", "low-precision-reduction"),
    _m(T.kl_div_batchmean_sum_first, "kl_div", "torch", "bfloat16", "no_overflow", "low-precision-reduction",
       strict=True),
    _m(N.bce_with_logits_sum_over_n, "binary_cross_entropy_with_logits", "numpy", "float16", "no_overflow",
       "low-precision-reduction"),
    # the sigmoid derivative as s (1 - s)
    _m(T.bce_with_logits_sigmoid_derivative, "binary_cross_entropy_with_logits", "torch", "float32",
       "no_overflow", "sigmoid-derivative"),
    _m(T.logsigmoid_sigmoid_derivative, "logsigmoid", "torch", "float32", "no_overflow", "sigmoid-derivative"),
    _m(T.logsigmoid_sigmoid_derivative, "logsigmoid", "torch", "bfloat16", "no_overflow", "sigmoid-derivative",
       name="logsigmoid_sigmoid_derivative@bfloat16"),
    # focal terms
    _m(T.focal_cross_entropy, "cross_entropy", "torch", "float32", "agreement", "focal-term"),
    _m(T.sigmoid_focal_loss, "binary_cross_entropy_with_logits", "torch", "float32", "agreement", "focal-term"),
    _m(N.focal_cross_entropy, "cross_entropy", "numpy", "float32", "no_overflow", "focal-term",
       name="np_focal_cross_entropy"),
    # labels cast to a low-precision float
    _m(T.cross_entropy_onehot_in_input_dtype, "cross_entropy", "torch", "bfloat16", "agreement", "label-cast"),
    _m(T.nll_loss_labels_through_half, "nll_loss", "torch", "bfloat16", "agreement", "label-cast"),
    _m(N.cross_entropy_labels_as_float16, "cross_entropy", "numpy", "float32", "agreement", "label-cast"),
    # reduction denominators
    _m(T.cross_entropy_weighted_mean_over_n, "cross_entropy", "torch", "float32", "agreement",
       "reduction-denominator"),
    _m(T.nll_loss_ignore_mean_over_all, "nll_loss", "torch", "float32", "agreement", "reduction-denominator"),
    _m(N.kl_div_batchmean_over_numel, "kl_div", "numpy", "float32", "agreement", "reduction-denominator"),
    _m(N.cross_entropy_weighted_mean_over_kept, "cross_entropy", "numpy", "float64", "agreement",
       "reduction-denominator"),
]

C = controls
CONTROLS = [
    _m(C.careful_softplus, "softplus", "torch", "float32", None, None),
    _m(C.careful_logsigmoid, "logsigmoid", "torch", "bfloat16", None, None),
    _m(C.careful_bce_with_logits, "binary_cross_entropy_with_logits", "torch", "float32", None, None),
    _m(C.careful_cross_entropy_np, "cross_entropy", "numpy", "float64", None, None),
    _m(C.numpy_logsumexp, "logsumexp", "numpy", "float32", None, None),
    _m(C.numpy_log_softmax, "log_softmax", "numpy", "float32", None, None),
    _m(C.numpy_softplus, "softplus", "numpy", "float64", None, None),
    _m(C.scipy_log_expit, "logsigmoid", "numpy", "float64", None, None),
    _m(C.scipy_expit, "sigmoid", "numpy", "float32", None, None),
    _m(C.torch_sigmoid, "sigmoid", "torch", "float32", None, None),
    _m(C.torch_logsigmoid, "logsigmoid", "torch", "float32", None, None),
]


def by_name(name: str) -> Member:
    for m in MEMBERS + CONTROLS:
        if m.name == name:
            return m
    raise KeyError(name)
