"""lossproof's oracles: exact, correctly rounded ground truth for loss functions (mpmath only).

    >>> import oracles
    >>> r = oracles.cross_entropy([[0.0, 0.0, 10.0, 0.0]], [2])
    >>> r.to("float32"), str(r)[:12]
    (0.00013619051..., '0.0001361905')

Every function takes torch's arguments (nested sequences of Python numbers, or anything with ``.tolist()``)
and returns an ``Exact`` (nested lists of them for non-scalar output): ``.to(fmt)`` is the value correctly
rounded to "float64", "float32", "float16" or "bfloat16", ``.grad`` the exact gradient with respect to
``input``, ``.kappa`` the condition number, ``str()`` at least 30 significant digits.
"""

from . import codec, formats, torch_variants
from . import fast_grad as fast_grad  # registers the certified gradients of the softmax family and class losses
from .exact import Exact, OraclePrecisionError, get_precision_cap, precision_cap
from .formats import FORMATS, get_format, round_to_format
from .functions import log_softmax, logsigmoid, logsumexp, sigmoid, softmax, softplus, xlogy
from .losses import binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, kl_div, nll_loss
from .tensors import OracleInputError

#: every oracle by the name the command line and the suite use; torch-behaviour variants are "torch:NAME"
REGISTRY = {
    "cross_entropy": cross_entropy,
    "nll_loss": nll_loss,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "kl_div": kl_div,
    "logsumexp": logsumexp,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "sigmoid": sigmoid,
    "logsigmoid": logsigmoid,
    "softplus": softplus,
    "xlogy": xlogy,
    "torch:softplus": torch_variants.softplus,
    "torch:binary_cross_entropy": torch_variants.binary_cross_entropy,
}

__all__ = [
    "Exact", "OraclePrecisionError", "OracleInputError", "precision_cap", "get_precision_cap", "FORMATS",
    "get_format", "round_to_format", "formats", "codec", "torch_variants", "REGISTRY",
    *[n for n in REGISTRY if ":" not in n],
]
