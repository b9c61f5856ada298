"""Every noise scheme of the chapter, written once.

`p` is always the probability of DROPPING a unit (PyTorch's and D2L's
convention). Srivastava et al. (2014) write the keep probability q = 1 - p.

Two kinds of code live here:
- `dropout_layer`, the readable inverted dropout that the pages teach with;
- the schemes that the training engine applies to K models at once. A scheme
  is one function `scheme(p, shape, generators)` returning (M, s): the noisy
  hidden layer is relu(A) * M * s, where M has A's shape (K, B, units) and s is
  one number per model (K, 1, 1). The engine folds s into the next layer's
  weights, which saves a pass over the activations. Each model draws from its
  own generator, so its noise does not depend on the other models in the stack.
  Adding a scheme is one function here and one entry in SCHEMES.
"""
import math
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
    The mask is drawn on X's device (a mask made on the CPU would fail against
    CUDA activations) and always in float32: drawn in X's dtype, a bfloat16
    uniform has only 256 levels, and p = 0.999 would drop everything.
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
    keep = torch.rand(X.shape, device=X.device) >= p
    return X * keep.to(X.dtype) / (1.0 - p)


def random_int16(shape, generators, device):
    """(K, *shape) uniform 16-bit integers, model k's drawn from generators[k].

    One 64-bit draw gives four 16-bit integers: the CPU's generator is serial,
    and a float per element from torch.rand made masks 40 % of a training step."""
    n = math.prod(shape)
    bits = torch.empty((len(generators), (n + 3) // 4), dtype=torch.int64, device=device)
    for row, generator in zip(bits, generators):
        row.random_(-2**63, None, generator=generator)
    return bits.view(torch.int16)[:, :n].view(len(generators), *shape)


def keep_threshold(p):
    """int16 thresholds: a 16-bit draw >= threshold keeps the unit. p is rounded to a
    multiple of 2**-16 (the drop rate moves by less than 8e-6); p = 1 drops all."""
    ticks = torch.round(p * 2**16)
    return (ticks - 2**15).clamp(max=2**15 - 1).to(torch.int16), ticks / 2**16


def bernoulli(p, shape, generators):
    """Inverted dropout: M = keep mask (kept with probability 1-p), s = 1/(1-p), 0 at p = 1.
    s uses the rounded p, so the mean of M*s is exactly 1."""
    threshold, rounded = keep_threshold(p)
    M = random_int16(shape, generators, p.device) >= threshold
    keep = 1 - rounded
    return M, torch.where(keep > 0, 1 / keep.clamp_min(2**-16), torch.zeros_like(p))


def gaussian(p, shape, generators):
    """Gaussian dropout: M = 1 + sqrt(p/(1-p))·eps, eps ~ N(0, 1): the same mean (1) and
    variance (p/(1-p)) as the Bernoulli multiplier (Srivastava et al., 2014, sec. 10)."""
    eps = torch.stack([torch.randn(shape, generator=g, device=p.device) for g in generators])
    std = torch.sqrt(p / (1 - p).clamp_min(1e-12))
    return eps.mul_(std).add_(1), torch.ones_like(p)


def uniform(p, shape, generators):
    """M = 1 + a·u, u ~ U(-1, 1), a = sqrt(3p/(1-p)): mean 1, variance p/(1-p) again,
    a third shape of noise with dropout's first two moments."""
    u = torch.stack([torch.rand(shape, generator=g, device=p.device) for g in generators])
    a = torch.sqrt(3 * p / (1 - p).clamp_min(1e-12))
    return u.mul_(2).sub_(1).mul_(a).add_(1), torch.ones_like(p)


SCHEMES = {"bernoulli": bernoulli, "gaussian": gaussian, "uniform": uniform}
# p = 1 is "drop everything" for Bernoulli; the others have infinite variance there
NEEDS_P_BELOW_1 = ("gaussian", "uniform")
