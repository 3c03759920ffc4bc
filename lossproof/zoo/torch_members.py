"""Unstable loss implementations in PyTorch, written the way they appear in public code (training scripts,
tutorials, "from scratch" notebooks, custom kernels' reference paths). Each function's docstring states its one
mistake in its first line; ``lossproof/zoo/__init__.py`` says which loss, format and property each is checked against.

Signatures follow torch.nn.functional's names (``input``, ``target``, ``weight``, ``reduction``, ...): the suite
passes only the parameters a function accepts, and calls one without ``reduction`` with torch's default, "mean".
"""

import torch
import torch.nn.functional as F


def _class_dim(x):
    return 1 if x.dim() > 1 else 0


def _pick(values, target):
    """values[n, target[n], ...]: the target class's entry along the class dimension."""
    d = _class_dim(values)
    return values.gather(d, target.unsqueeze(d)).squeeze(d)


def _index_target(target):
    """These functions take class indices only: probability targets are a capability they lack (the suite reports
    that as not supported), not a wrong answer to count."""
    if target.is_floating_point():
        raise NotImplementedError("class-index targets only")
    return target


def _mean(loss):
    """The mean as sum(l / n): the members' mistakes are elsewhere, so their means do not overflow where the
    mean itself is finite (l.mean() in float32 sums first, as torch's own loss does: a documented deviation)."""
    if loss.numel() == 0:
        return loss.sum() / 0  # the mean of nothing is NaN
    return (loss / loss.numel()).sum()


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return _mean(loss)


# ---------------------------------------------------------------------------------------------------------
# no max-shift before exp


def softmax_no_shift(input, dim=-1):
    """exp(x) / sum(exp(x)) without subtracting the max: exp overflows past 88.7 in float32 and inf / inf = NaN."""
    e = torch.exp(input)
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax_no_shift(input, dim=-1):
    """x - log(sum(exp(x))) without the max shift: in float16 exp overflows past 11.09, so a logit of 12 gives -inf."""
    return input - torch.log(torch.exp(input).sum(dim=dim, keepdim=True))


def cross_entropy_no_shift(input, target):
    """logsumexp(x) - x_t with log(sum(exp(x))) unshifted: a logit of 89 makes the loss inf in float32."""
    d = _class_dim(input)
    lse = torch.log(torch.exp(input).sum(dim=d))
    return _mean((lse - _pick(input, target)))


def cross_entropy_max_added_back(input, target):
    """(max + log(sum(exp(x - max)))) - x_t: the maximum added back before x_t is subtracted loses log C below a
    large offset's ulp (3,521 classes at 2**30 in float32: 0, not 8.2; optax 0.2.8's integer-label form)."""
    d = _class_dim(input)
    m = input.max(dim=d, keepdim=True).values.detach()
    lse = (m + torch.log(torch.exp(input - m).sum(dim=d, keepdim=True))).squeeze(d)
    return _mean(lse - _pick(input, target))


# ---------------------------------------------------------------------------------------------------------
# log(softmax) instead of log_softmax


def cross_entropy_log_of_softmax(input, target):
    """-log(softmax(x)[t]): the target's probability underflows to 0 far below the max, and -log(0) = inf."""
    p = torch.softmax(input, dim=_class_dim(input))
    return -_mean(torch.log(_pick(p, target)))


def log_softmax_log_of_softmax(input, dim=-1):
    """log(softmax(x)): shifted, but a class 104 below the max in float32 has probability 0 and log 0 = -inf."""
    return torch.log(torch.softmax(input, dim=dim))


# ---------------------------------------------------------------------------------------------------------
# clipping with an eps the format cannot represent


def bce_clamp_eps(input, target, reduction="mean"):
    """p.clamp(1e-7, 1 - 1e-7) before the logs: in float16 1 - 1e-7 rounds to 1, so log(1 - p) = log 0 at p = 1."""
    p = input.clamp(1e-7, 1 - 1e-7)
    loss = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
    return _reduce(loss, reduction)


def cross_entropy_log_eps(input, target):
    """-log(p_t + 1e-8): 1e-8 is below float16's smallest subnormal and adds nothing, so log(0) = -inf returns."""
    p = torch.softmax(input, dim=_class_dim(input))
    return -_mean(torch.log(_pick(p, target) + 1e-8))


# ---------------------------------------------------------------------------------------------------------
# log(sigmoid) and log(1 - sigmoid)


def logsigmoid_log_of_sigmoid(input):
    """log(sigmoid(x)): sigmoid underflows to 0 below x = -103.9 in float32 and log 0 = -inf (exact: about x)."""
    return torch.log(torch.sigmoid(input))


def bce_with_logits_log_sigmoid(input, target, reduction="mean"):
    """-(y log s + (1 - y) log(1 - s)) with s = sigmoid(x): 1 - s = 0 from x = 17 in float32, log 0 = -inf."""
    s = torch.sigmoid(input)
    loss = -(target * torch.log(s) + (1 - target) * torch.log(1 - s))
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------------------
# log(1 + exp(x))


def softplus_log1p_exp(input):
    """log(1 + exp(x)): exp overflows past 88.7 in float32, where softplus(x) is about x."""
    return torch.log(1 + torch.exp(input))


def softplus_where_branches(input):
    """where(x > 0, x + log1p(exp(-x)), log1p(exp(x))): the untaken branch overflows and its gradient inf * 0 = NaN
    leaks through torch.where."""
    return torch.where(input > 0, input + torch.log1p(torch.exp(-input)), torch.log1p(torch.exp(input)))


def bce_with_logits_log1p_exp(input, target, reduction="mean"):
    """(1 - y) x + log(1 + exp(-x)): exp(-x) overflows for x below -88.7 in float32 (the loss is about -x y)."""
    loss = (1 - target) * input + torch.log(1 + torch.exp(-input))
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------------------
# p log p without the 0 log 0 = 0 rule


def kl_div_plogp(input, target, reduction="mean"):
    """target * (log(target) - input): at target = 0, 0 * log 0 = 0 * -inf = NaN instead of 0."""
    loss = target * (torch.log(target) - input)
    if reduction == "batchmean":
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction)


def cross_entropy_soft_targets_mul(input, target):
    """-(t * log_softmax(x)).sum(): a zero target on a -inf (masked) logit gives 0 * -inf = NaN, not 0."""
    d = _class_dim(input)
    logp = F.log_softmax(input, dim=d)
    if not target.is_floating_point():
        return -_mean(_pick(logp, target))
    return -_mean((target * logp).sum(dim=d))


# ---------------------------------------------------------------------------------------------------------
# fully masked rows, mask constants


def logsumexp_unguarded(input, dim, keepdim=False):
    """m + log(sum(exp(x - m))) with no guard for m = -inf: a fully masked row gives -inf - (-inf) = NaN."""
    m = torch.amax(input, dim=dim, keepdim=True)
    out = m + torch.log(torch.exp(input - m).sum(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def log_softmax_mask_constant(input, dim=-1):
    """-inf masks replaced by -1e4 (an old HF convention) before log_softmax: a masked class gets a finite
    log-probability instead of -inf."""
    x = input.masked_fill(torch.isneginf(input), -1e4)
    return F.log_softmax(x, dim=dim)


def cross_entropy_mask_constant(input, target):
    """-inf masks replaced by -1e4 before cross_entropy: a masked target class costs about 1e4 instead of inf."""
    x = input.masked_fill(torch.isneginf(input), -1e4)
    return F.cross_entropy(x, target)


# ---------------------------------------------------------------------------------------------------------
# reductions accumulated in float16 / bfloat16


def cross_entropy_sum_over_n(input, target):
    """The mean as loss.sum() / N in the input's dtype: in float16 the sum overflows at 65504 while the mean is
    finite."""
    d = _class_dim(input)
    loss = -_pick(F.log_softmax(input, dim=d), target)
    return loss.sum() / loss.numel()


def logsumexp_running_sum(input, dim, keepdim=False):
    """A streaming logsumexp whose running total of exp(x - m) is kept in the input's dtype: in float16 it stops
    growing at 2048 (adding 1 rounds back), so 4,096 equal logits give log 2048 instead of log 4096."""
    if isinstance(dim, (tuple, list)):
        if len(dim) != 1:
            raise NotImplementedError("one dimension at a time")
        dim = dim[0]
    d = dim % input.dim()
    m = torch.amax(input, dim=d, keepdim=True)
    m = torch.where(torch.isneginf(m), torch.zeros_like(m), m)
    e = torch.exp(input - m)
    acc = torch.zeros_like(e.select(d, 0))
    for k in range(e.shape[d]):
        acc = acc + e.select(d, k)
    out = m.squeeze(d) + torch.log(acc)
    return out.unsqueeze(d) if keepdim else out


def kl_div_batchmean_sum_first(input, target, reduction="mean"):
    """batchmean as pointwise.sum() / N in the input's dtype: in bfloat16 the sum overflows past 3.4e38 where the
    batch mean is finite."""
    loss = torch.where(target > 0, target * (torch.log(target) - input), torch.zeros_like(input))
    if reduction == "batchmean":
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------------------
# the sigmoid derivative as s (1 - s)


def _softplus(x):
    return torch.logaddexp(x, torch.zeros_like(x))


class _BCEWithLogitsChainRule(torch.autograd.Function):
    """A stable forward with a hand-written backward through the chain rule dL/ds * ds/dx, ds/dx = s (1 - s)."""

    @staticmethod
    def forward(ctx, x, y):
        s = torch.sigmoid(x)
        ctx.save_for_backward(s, y)
        return y * _softplus(-x) + (1 - y) * _softplus(x)

    @staticmethod
    def backward(ctx, g):
        s, y = ctx.saved_tensors
        dl_ds = -y / s + (1 - y) / (1 - s)
        ds_dx = s * (1 - s)
        return g * dl_ds * ds_dx, None


def bce_with_logits_sigmoid_derivative(input, target, reduction="mean"):
    """Backward as (dL/ds) * s(1 - s): once s rounds to 1 (x > 17 in float32), (1 - y) / 0 * 0 = NaN; the exact
    gradient is s - y."""
    return _reduce(_BCEWithLogitsChainRule.apply(input, target), reduction)


class _LogSigmoidChainRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        s = torch.sigmoid(x)
        ctx.save_for_backward(s)
        return F.logsigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return g * (s * (1 - s)) / s  # d log(s) = s'(x) / s


def logsigmoid_sigmoid_derivative(input):
    """Backward as s(1 - s) / s (the chain rule through log s): where s underflows to 0 this is 0 / 0 = NaN; the
    exact gradient is 1 - s, about 1."""
    return _LogSigmoidChainRule.apply(input)


# ---------------------------------------------------------------------------------------------------------
# focal terms (1 - p)^gamma


def focal_cross_entropy(input, target, gamma=0.0):
    """Focal loss with (1 - p_t)**gamma taken as exp(gamma * log1p(-p_t)): at p_t = 1 that is exp(0 * -inf) = NaN,
    even at the default gamma = 0 where the loss is plain cross-entropy."""
    d = _class_dim(input)
    logpt = _pick(F.log_softmax(input, dim=d), target)
    pt = logpt.exp()
    modulating = torch.exp(gamma * torch.log1p(-pt))
    return _mean((-modulating * logpt))


def sigmoid_focal_loss(input, target, gamma=0.0, reduction="mean"):
    """torchvision-style sigmoid focal loss with (1 - p_t)**gamma as exp(gamma * log(1 - p_t)): NaN wherever p_t
    rounds to 1 (|x| > 17 in float32, confident and right), even at gamma = 0."""
    p = torch.sigmoid(input)
    ce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * torch.exp(gamma * torch.log(1 - p_t))
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------------------
# integer labels cast to a low-precision float


def cross_entropy_onehot_in_input_dtype(input, target):
    """One-hot built by comparing arange(C) with the labels in the input's dtype: bfloat16 holds integers exactly
    only up to 256, so class 257 reads as 256 (two classes match one label, or none)."""
    d = _class_dim(input)
    C = input.shape[d]
    shape = [1] * input.dim()
    shape[d] = C
    classes = torch.arange(C, device=input.device).to(input.dtype).view(shape)
    onehot = classes == _index_target(target).to(input.dtype).unsqueeze(d)
    logp = F.log_softmax(input, dim=d)
    return -_mean(torch.where(onehot, logp, torch.zeros_like(logp)).sum(dim=d))


def nll_loss_labels_through_half(input, target, reduction="mean"):
    """Labels moved with the batch (``batch.to(dtype)``) and cast back with .long(): in bfloat16 label 257 becomes
    256, the wrong class's log-probability."""
    t = target.to(input.dtype).long()
    return _reduce(-_pick(input, t), reduction)


# ---------------------------------------------------------------------------------------------------------
# wrong reduction denominators


def cross_entropy_weighted_mean_over_n(input, target, weight=None, reduction="mean"):
    """Class weights applied but the mean divided by N instead of the sum of the targets' weights."""
    d = _class_dim(input)
    loss = -_pick(F.log_softmax(input, dim=d), target)
    if weight is not None:
        loss = loss * weight[target]
    return _reduce(loss, reduction)


def nll_loss_ignore_mean_over_all(input, target, ignore_index=-100, reduction="mean"):
    """ignore_index rows zeroed but the mean divided by every target, ignored ones included."""
    keep = target != ignore_index
    t = torch.where(keep, target, torch.zeros_like(target))
    loss = torch.where(keep, -_pick(input, t), torch.zeros_like(input.select(_class_dim(input), 0)))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / target.numel()
