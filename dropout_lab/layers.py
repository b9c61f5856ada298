"""Noise layers that more than one notebook uses.

`p` is always the probability of DROPPING a unit (PyTorch's and D2L's
convention). Srivastava et al. (2014) write the keep probability q = 1 - p.
"""
import numbers

import torch


def check_p(p):
    """Raise a ValueError that names `p` unless it is a real number in [0, 1]."""
    if isinstance(p, torch.Tensor) and p.numel() == 1:
        p = p.item()
    if (not isinstance(p, numbers.Real) or isinstance(p, bool)
            or not 0.0 <= float(p) <= 1.0):
        raise ValueError(
            f"dropout probability p must be a number in [0, 1], got {p!r} "
            "(p is the probability of DROPPING a unit; keep probability is 1 - p)")
    return float(p)


def dropout_layer(X, p):
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    The scaling keeps E[output] = X, so nothing has to change at test time.
    The mask is drawn with `torch.rand_like`, i.e. on X's device and in X's
    dtype: a mask made on the CPU would fail against CUDA activations.
    """
    p = check_p(p)
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor, got {type(X).__name__}")
    if not X.is_floating_point():
        raise TypeError(f"X must be a floating-point tensor, got dtype {X.dtype}")
    if p == 1.0:
        return X * 0.0  # all dropped; X * 0 keeps the autograd graph (and no 0/0)
    if p == 0.0:
        return X
    mask = (torch.rand_like(X) >= p).to(X.dtype)
    return X * mask / (1.0 - p)
