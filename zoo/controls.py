"""Sound implementations: the zoo's controls. The suite must never flag these (a flag would be a false alarm of
the suite, not a bug here). Hand-written ones use the textbook stable forms; the others wrap library functions
(our NumPy losses, SciPy, torch where no documented deviation applies to the loss, subjects/deviations.py)."""

import numpy as np
import torch


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
    back (m + log s - x_t loses ulp(m): 5e9 ULP of a loss at logits near 2.5e7); class-index targets only."""
    if np.issubdtype(np.asarray(target).dtype, np.floating):
        raise NotImplementedError("class-index targets only")
    a = 1 if input.ndim > 1 else 0
    m = input.max(axis=a, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(input.dtype)
    shifted = input - m
    log_s = np.log(np.exp(shifted).sum(axis=a))
    if input.ndim == 1:
        dt = shifted[target]
    else:
        dt = np.take_along_axis(shifted, np.expand_dims(target, a), axis=a).squeeze(a)
    loss = np.asarray(log_s - dt)
    return np.sum(loss / loss.size)  # divided first: the sum may overflow where the mean does not


def numpy_logsumexp(input, dim=None, keepdim=False):
    """Our NumPy logsumexp (subjects/numpy_losses.py), held to the accurate rung by its own tests."""
    from subjects import numpy_losses

    return numpy_losses.logsumexp(input, dim=dim, keepdim=keepdim)


def numpy_log_softmax(input, dim=None):
    """Our NumPy log_softmax (subjects/numpy_losses.py)."""
    from subjects import numpy_losses

    return numpy_losses.log_softmax(input, dim=dim)


def numpy_softplus(input, beta=1.0):
    """Our NumPy softplus (subjects/numpy_losses.py), with beta."""
    from subjects import numpy_losses

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
