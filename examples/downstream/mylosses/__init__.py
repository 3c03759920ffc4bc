"""Custom activations and losses, written with care for extreme inputs."""

import torch

__all__ = ["softplus", "sigmoid", "naive_softplus", "smoothed_cross_entropy"]


def softplus(input: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)) as logaddexp(x, 0) = max(x, 0) + log1p(exp(-|x|)): no overflow for large x, and a gradient
    exp(x - softplus(x)) that is sigmoid(x) everywhere."""
    return torch.logaddexp(input, torch.zeros_like(input))


def sigmoid(input: torch.Tensor) -> torch.Tensor:
    """1 / (1 + exp(-x)) through exp(-softplus(-x)): finite value and gradient for every finite x."""
    return torch.exp(-softplus(-input))


def naive_softplus(input: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)), the way it is often written: exp overflows for x > 88.7 in float32."""
    return torch.log(1 + torch.exp(input))


def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the classes last ((batch, classes), as JAX and Keras lay them out) and label smoothing
    0.1 built in, averaged over the batch: its table in pyproject.toml says so (class_axis, fixed)."""
    return torch.nn.functional.cross_entropy(logits.movedim(-1, 1) if logits.ndim > 1 else logits, labels,
                                             label_smoothing=0.1)
