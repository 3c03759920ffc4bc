"""Loss implementations the way people write them, for trying ``lossproof check`` (see README "Checking your own
loss"). The naive ones are wrong in ways the battery finds; the careful ones pass it.

    lossproof check softplus examples/user_losses.py:naive_softplus --dtype float32      # exit 1, reproducer
    lossproof check softplus examples/user_losses.py:careful_softplus --dtype float32    # exit 0
"""

import torch


def naive_softplus(input):
    """log(1 + exp(x)): exp overflows to inf at x > 88.7 in float32, where softplus(x) is about x."""
    return torch.log(1 + torch.exp(input))


def where_softplus(input):
    """Both branches of torch.where are evaluated: log1p(exp(x)) overflows at x = 10000 in the branch not taken,
    and its gradient inf * 0 = NaN leaks into the result's gradient (a classic autograd trap)."""
    return torch.where(input > 0, input + torch.log1p(torch.exp(-input)), torch.log1p(torch.exp(input)))


def careful_softplus(input):
    """logaddexp(x, 0) = max(x, 0) + log1p(exp(-|x|)), whose gradient is exp(x - softplus(x)) = sigmoid(x)
    everywhere, 1/2 at the kink."""
    return torch.logaddexp(input, torch.zeros_like(input))


def naive_cross_entropy(input, target):
    """-log(softmax(x))[target]: softmax underflows to 0 for a wrong class far below the max, and log(0) = -inf."""
    p = torch.softmax(input, dim=-1)
    return -torch.log(p.gather(-1, target.unsqueeze(-1))).mean()


def naive_sigmoid(input):
    """1 / (1 + exp(-x)): stable in value (exp(-x) = inf gives 1/inf = 0), but its gradient is NaN where
    exp(-x) overflows (inf / inf)."""
    return 1 / (1 + torch.exp(-input))
