"""Unstable loss implementations in NumPy, written the way they appear in public code ("from scratch" notebooks,
course assignments, data-science utilities). Each function's docstring states its one mistake in its first
line; ``lossproof/zoo/__init__.py`` says which loss, format and property each is checked against.

The suite calls them with NumPy arrays in the format under test (class indices as int64) and measures the values
(a NumPy function has no autograd).
"""

import numpy as np


def _class_axis(x):
    return 1 if x.ndim > 1 else 0


def _pick(values, target):
    a = _class_axis(values)
    if values.ndim == 1:
        return values[target]
    return np.take_along_axis(values, np.expand_dims(target, a), axis=a).squeeze(a)


def _mean(loss):
    """The mean as sum(l / n): the members' mistakes are elsewhere, so their means do not overflow where the
    mean itself is finite (np.mean in float32 sums first)."""
    loss = np.asarray(loss)
    if loss.size == 0:
        return np.sum(loss) / loss.dtype.type(0)  # the mean of nothing is NaN
    return np.sum(loss / loss.size)


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return _mean(loss)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------------------------------------------
# no max-shift before exp


def logsumexp_no_shift(input, dim=None, keepdim=False):
    """np.log(np.sum(np.exp(x))): exp overflows past 88.7 in float32, so any logit of 89 gives inf."""
    return np.log(np.sum(np.exp(input), axis=dim, keepdims=keepdim))


def cross_entropy_no_shift(input, target):
    """log(sum(exp(x))) - x_t unshifted: inf past 709.8 in float64, and log(0) = -inf when every exp underflows."""
    a = _class_axis(input)
    lse = np.log(np.sum(np.exp(input), axis=a))
    return _mean(lse - _pick(input, target))


# ---------------------------------------------------------------------------------------------------------
# log(softmax) instead of log_softmax


def log_softmax_log_of_softmax(input, dim=-1):
    """np.log(softmax(x)): a class more than 104 below the max has probability 0 in float32, and log 0 = -inf."""
    return np.log(_softmax(input, dim))


def cross_entropy_soft_log_of_softmax(input, target):
    """-(t * np.log(softmax(x))).sum(): in float16 probabilities below 6e-8 are 0, log 0 = -inf, and the loss is
    inf (or NaN where t = 0)."""
    a = _class_axis(input)
    p = _softmax(input, a)
    if not np.issubdtype(target.dtype, np.floating):
        return _mean(-np.log(_pick(p, target)))
    return _mean(-(target * np.log(p)).sum(axis=a))


# ---------------------------------------------------------------------------------------------------------
# clipping with an eps the format cannot represent


def bce_clip_eps(input, target, reduction="mean"):
    """np.clip(p, 1e-12, 1 - 1e-12): 1 - 1e-12 rounds to 1.0 in float32, so p = 1 still gives log(1 - p) = -inf."""
    p = np.clip(input, 1e-12, 1 - 1e-12)
    loss = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    return _reduce(loss, reduction)


def bce_with_logits_clip_sigmoid(input, target, reduction="mean"):
    """sigmoid clipped to [1e-7, 1 - 1e-7] before the logs: in float16 1 - 1e-7 is 1 and 1e-7 is a subnormal that
    log handles, but log(1 - 1) = -inf comes back for every logit above 8."""
    p = np.clip(1 / (1 + np.exp(-input)), 1e-7, 1 - 1e-7)
    loss = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------------------
# log(sigmoid) and log(1 - sigmoid)


def bce_with_logits_log_sigmoid(input, target, reduction="mean"):
    """-(y log s + (1 - y) log(1 - s)) with s = 1 / (1 + exp(-x)): 1 - s = 0 from x = 37 in float64, log 0 = -inf."""
    s = 1 / (1 + np.exp(-input))
    loss = -(target * np.log(s) + (1 - target) * np.log(1 - s))
    return _reduce(loss, reduction)


def logsigmoid_log_of_sigmoid(input):
    """np.log(1 / (1 + np.exp(-x))): in float16 exp(-x) overflows below x = -11.1, 1 / inf = 0 and log 0 = -inf."""
    return np.log(1 / (1 + np.exp(-input)))


# ---------------------------------------------------------------------------------------------------------
# log(1 + exp(x))


def softplus_log1p_exp(input):
    """np.log(1 + np.exp(x)): exp overflows past 88.7 in float32, where softplus(x) is about x."""
    return np.log(1 + np.exp(input))


def logsigmoid_neg_log1p_exp(input):
    """-np.log(1 + np.exp(-x)): exp(-x) overflows below x = -709.8 in float64, where logsigmoid(x) is about x."""
    return -np.log(1 + np.exp(-input))


# ---------------------------------------------------------------------------------------------------------
# p log p without the 0 log 0 = 0 rule


def kl_div_plogp(input, target, reduction="mean"):
    """np.sum(p * np.log(p / q)) with q = exp(input): p = 0 gives 0 * log 0 = NaN instead of 0."""
    loss = target * np.log(target / np.exp(input))
    if reduction == "batchmean":
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction)


def xlogy_mul_log(input, other):
    """x * np.log(y): at x = 0, y = 0 this is 0 * -inf = NaN where xlogy defines 0."""
    return input * np.log(other)


# ---------------------------------------------------------------------------------------------------------
# fully masked rows


def logsumexp_unguarded(input, dim=None, keepdim=False):
    """m + log(sum(exp(x - m))) without a guard for m = -inf: a fully masked row gives -inf - (-inf) = NaN."""
    m = np.max(input, axis=dim, keepdims=True)
    out = m + np.log(np.sum(np.exp(input - m), axis=dim, keepdims=True))
    return out if keepdim else np.squeeze(out, axis=dim)


# ---------------------------------------------------------------------------------------------------------
# reductions accumulated in float16


def bce_with_logits_sum_over_n(input, target, reduction="mean"):
    """The mean as l.sum() / l.size: the float16 sum overflows at 65504 where the mean is finite."""
    loss = target * np.logaddexp(0, -input) + (1 - target) * np.logaddexp(0, input)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / loss.size


# ---------------------------------------------------------------------------------------------------------
# focal terms (1 - p)^gamma


def focal_cross_entropy(input, target, gamma=0.0):
    """Focal loss with (1 - p_t)**gamma as np.exp(gamma * np.log1p(-p_t)): NaN at p_t = 1 (0 * -inf), even at the
    default gamma = 0 where it is plain cross-entropy."""
    a = _class_axis(input)
    x = input - input.max(axis=a, keepdims=True)
    logp = x - np.log(np.exp(x).sum(axis=a, keepdims=True))
    logpt = _pick(logp, target)
    return _mean(-np.exp(gamma * np.log1p(-np.exp(logpt))) * logpt)


# ---------------------------------------------------------------------------------------------------------
# integer labels cast to a low-precision float


def cross_entropy_labels_as_float16(input, target):
    """One-hot by comparing the class range with the labels cast to float16: integers above 2048 are not all
    representable, so a label matches two classes or none."""
    a = _class_axis(input)
    C = input.shape[a]
    x = input - input.max(axis=a, keepdims=True)
    logp = x - np.log(np.exp(x).sum(axis=a, keepdims=True))
    if np.issubdtype(np.asarray(target).dtype, np.floating):
        raise NotImplementedError("class-index targets only")
    classes = np.arange(C).astype(np.float16)
    labels = np.asarray(target).astype(np.float16)
    if input.ndim == 1:
        onehot = classes == labels
    else:
        shape = [1] * input.ndim
        shape[a] = C
        onehot = classes.reshape(shape) == np.expand_dims(labels, a)
    return _mean(-np.where(onehot, logp, 0).sum(axis=a))


# ---------------------------------------------------------------------------------------------------------
# wrong reduction denominators


def kl_div_batchmean_over_numel(input, target, reduction="mean"):
    """reduction="batchmean" computed as the mean over every element (what torch's own "mean" does, and warns
    about), not the sum over the batch size."""
    loss = np.where(target > 0, target * (np.log(np.where(target > 0, target, 1)) - input), 0).astype(input.dtype)
    if reduction in ("mean", "batchmean"):
        return loss.mean()
    return _reduce(loss, reduction)


def cross_entropy_weighted_mean_over_kept(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Weights and ignore_index honoured, but the mean divides the weighted sum by the count of kept targets
    instead of the sum of their weights."""
    a = _class_axis(input)
    x = input - input.max(axis=a, keepdims=True)
    logp = x - np.log(np.exp(x).sum(axis=a, keepdims=True))
    target = np.asarray(target)
    keep = target != ignore_index
    t = np.where(keep, target, 0)
    loss = -_pick(logp, t)
    if weight is not None:
        loss = loss * weight[t]
    loss = np.where(keep, loss, 0).astype(input.dtype)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / loss.dtype.type(keep.sum())
