"""Sound implementations: the zoo's controls. The suite must never flag these (a flag would be a false alarm of
the suite, not a bug here). Hand-written ones use the textbook stable forms; the others wrap library functions
(our NumPy losses, SciPy, torch where no documented deviation applies to the loss, subjects/deviations.py)."""

import numpy as np
import torch

from subjects import numpy_losses


def careful_softplus(input):
    """logaddexp(x, 0) = max(x, 0) + log1p(exp(-|x|)): no overflow, and its gradient is sigmoid(x) everywhere."""
    return torch.logaddexp(input, torch.zeros_like(input))


def careful_logsigmoid(input):
    """-logaddexp(0, -x): the softplus identity logsigmoid(x) = -softplus(-x), stable on both tails."""
    return -torch.logaddexp(torch.zeros_like(input), -input)


def careful_bce_with_logits(input, target, reduction="mean"):
    """y softplus(-x) + (1 - y) softplus(x): two nonnegative terms, so no cancellation for soft targets (the
    (1 - y) x + softplus(-x) form cancels when y is not 0 or 1 and x < 0)."""
    zero = torch.zeros_like(input)
    loss = target * torch.logaddexp(zero, -input) + (1 - target) * torch.logaddexp(zero, input)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if loss.numel() == 0:
        return loss.sum() / 0  # the mean of nothing is NaN
    return (loss / loss.numel()).sum()  # divided first: the sum of large losses may overflow where the mean does not


def careful_cross_entropy_np(input, target):
    """log(sum exp(x - m)) - (x_t - m): the max shift, and the target's shifted logit subtracted before m comes
    back (m + log s - x_t loses ulp(m): 5e9 ULP of a loss at logits near 2.5e7); class-index targets only.

    The mean is taken as the sum of each row's n-th part, since the sum may overflow where the mean does not; a row
    whose logits span more than the largest finite value (x_t - m overflows: its loss does too) gives its n-th
    part from the n-th parts of its terms, log s / n + m / n - x_t / n, which cannot overflow (m >= x_t: no
    cancellation). lossproof's no-overflow search found the second case (float64 logits +-1.8e308, an exact mean
    of 1.2e308) after the first was in place: this control was not sound before."""
    if np.issubdtype(np.asarray(target).dtype, np.floating):
        raise NotImplementedError("class-index targets only")
    a = 1 if input.ndim > 1 else 0
    m = input.max(axis=a, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(input.dtype)
    with np.errstate(over="ignore"):
        shifted = input - m
    log_s = np.log(np.exp(shifted).sum(axis=a))
    t = np.expand_dims(np.asarray(target), a) if input.ndim > 1 else np.asarray(target).reshape(1)
    x_t = np.take_along_axis(np.atleast_1d(input) if input.ndim == 1 else input, t, axis=a).squeeze(a)
    dt = np.take_along_axis(np.atleast_1d(shifted), t, axis=a).squeeze(a)
    if input.ndim == 1:
        x_t, dt = x_t.reshape(()), dt.reshape(())
    m = m.squeeze(a)
    n = np.asarray(log_s).size
    part = (log_s - dt) / n
    spans = np.isinf(dt) & np.isfinite(x_t)  # x_t - m overflowed (both finite)
    if np.any(spans):
        part = np.where(spans, log_s / n + m / n - x_t / n, part)
    return np.sum(part)


def numpy_logsumexp(input, dim=None, keepdim=False):
    """Our NumPy logsumexp (subjects/numpy_losses.py), held to the accurate rung by its own tests."""
    return numpy_losses.logsumexp(input, dim=dim, keepdim=keepdim)


def numpy_log_softmax(input, dim=None):
    """Our NumPy log_softmax (subjects/numpy_losses.py)."""
    return numpy_losses.log_softmax(input, dim=dim)


def numpy_softplus(input, beta=1.0):
    """Our NumPy softplus (subjects/numpy_losses.py), with beta."""
    return numpy_losses.softplus(input, beta=beta)


def scipy_log_expit(input):
    """scipy.special.log_expit: logsigmoid, written for both tails."""
    from scipy import special

    return special.log_expit(input)


def scipy_expit(input):
    """scipy.special.expit: sigmoid."""
    from scipy import special

    return special.expit(input)


def torch_sigmoid(input):
    """torch.sigmoid itself (no documented deviation)."""
    return torch.sigmoid(input)


def torch_logsigmoid(input):
    """torch.nn.functional.logsigmoid itself (no documented deviation)."""
    return torch.nn.functional.logsigmoid(input)
