"""Torch's documented behaviours that differ from the mathematical function, as named, exact variants.

These are not the truth; they are what torch says it computes, evaluated exactly, so that a torch result can be
checked against its own documentation (a documented deviation is measured, not waved through).

- ``softplus``: "For numerical stability the implementation reverts to the linear function when
  input * beta > threshold." https://pytorch.org/docs/stable/generated/torch.nn.functional.softplus.html
- ``binary_cross_entropy``: "our BCELoss clamps its log function outputs to be greater than or equal to -100."
  https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html
"""

from __future__ import annotations

from . import extended as X
from . import functions as F
from .exact import ExactTree
from .expr import ONE
from .losses import bce_terms
from .tensors import OracleInputError, TensorLike, value_of

__all__ = ["softplus", "binary_cross_entropy", "BCE_LOG_CLAMP"]

BCE_LOG_CLAMP = -100


def softplus(input: TensorLike, beta: float = 1.0, threshold: float = 20.0) -> ExactTree:
    """torch's softplus: x where beta * x > threshold (the exact product), else the exact softplus."""
    b, ib = F._beta_nodes(beta)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise OracleInputError(f"threshold must be a number, got {threshold!r}")
    th = value_of(threshold, "threshold")

    def linear(x):
        bx = X.mul(b, x)
        if X.is_nan(bx) or X.is_nan(th):
            return False
        return X.sign(X.sub(bx, th)) > 0 if not (X.is_inf(bx) and X.is_inf(th)) else bx > th

    return F._elementwise(
        input,
        lambda x: x if linear(x) else F.softplus_value(x, b, ib),
        lambda x: ONE if linear(x) else F.sigmoid_value(X.mul(b, x)),
    )


def binary_cross_entropy(input: TensorLike, target: TensorLike, weight: TensorLike | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> ExactTree:
    """BCELoss as documented: -w (y max(log p, -100) + (1 - y) max(log(1 - p), -100))."""
    return bce_terms(input, target, weight, size_average, reduce, reduction, clamp=value_of(BCE_LOG_CLAMP))
