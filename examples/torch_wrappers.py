"""One-line wrappers of torch.nn.functional, as projects write them (transformers' fixed_cross_entropy is such a
call). Their failures are torch's own documented behaviours: ``lossproof check`` passes them, listing each as
"shared with torch: <deviation>", and fails them on exactly those under ``--strict``.

    lossproof check cross_entropy examples/torch_wrappers.py:cross_entropy                  # exit 0
    lossproof check cross_entropy examples/torch_wrappers.py:cross_entropy --strict         # exit 1
"""

import torch.nn.functional as F


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    return F.binary_cross_entropy_with_logits(input, target, weight=weight, reduction=reduction, pos_weight=pos_weight)


def kl_div(input, target, reduction="mean", log_target=False):
    return F.kl_div(input, target, reduction=reduction, log_target=log_target)


def log_softmax(input, dim=None):
    return F.log_softmax(input, dim=dim)
