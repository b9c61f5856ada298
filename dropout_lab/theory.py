"""The small computations behind the chapter's theory pages.

Page "Why noise regularizes" compares least squares fitted on many noisy
copies of the inputs with the closed-form ridge solutions they converge to:

- additive Gaussian input noise of standard deviation sigma gives ridge
  regression with lambda = n * sigma**2 (Bishop, 1995);
- inverted dropout on the inputs gives a data-dependent ridge with the
  penalty p/(1-p) * sum_j w_j**2 * sum_i x_ij**2 (Wager et al., 2013).

Every loss here is a SUM over the n examples, not a mean: that is why n
appears in lambda. (With a mean the ridge lambda would be sigma**2; the
dropout penalty is the same either way.)

Page "The expectation argument" checks the mean and the variance of inverted
dropout by Monte Carlo (`dropout_moments`).

Everything works in float64; `p` is the probability of DROPPING a unit.
"""
from collections import namedtuple

import torch

from .noise import check_p, dropout_layer

# ---------------------------------------------------------------- closed forms


def synthetic_regression(n=50, d=5, noise=0.5, seed=0):
    """A small linear-regression problem: X (n, d), y (n,), w_true (d,), float64.

    The columns of X have different scales (from 0.5 to 3), so that a penalty
    that depends on the data (dropout's) differs visibly from plain ridge.
    """
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.5, 3.0, d, dtype=torch.float64)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    w_true = torch.randn(d, generator=g, dtype=torch.float64)
    y = X @ w_true + noise * torch.randn(n, generator=g, dtype=torch.float64)
    return X, y, w_true



def least_squares(X, y):
    """Ordinary least squares: the w that minimizes sum_i (y_i - x_i^T w)^2."""
    return torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)


def ridge(X, y, lam):
    """Ridge regression: (X^T X + lam I)^-1 X^T y.

    It minimizes sum_i (y_i - x_i^T w)^2 + lam * ||w||^2 (a SUM over examples).
    """
    A = X.T @ X + lam * torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
    return torch.linalg.solve(A, X.T @ y)


def dropout_ridge(X, y, p):
    """The minimizer of the expected squared error under inverted dropout on the inputs.

    (X^T X + p/(1-p) diag(X^T X))^-1 X^T y: a ridge whose penalty on w_j is
    weighted by sum_i x_ij^2, the squared length of feature j.
    """
    p = check_p(p)
    if p == 1.0:
        raise ValueError("p = 1 drops every input: nothing is left to fit")
    G = X.T @ X
    return torch.linalg.solve(G + p / (1 - p) * torch.diag(torch.diagonal(G)), X.T @ y)


# ------------------------------------------------------------- noisy copies


# The noise is drawn in float32 (several times faster than float64 on a CPU; its
# rounding, ~1e-7, is far below the Monte Carlo error) and used in X's dtype.

def gaussian_copies(X, sigma, copies, generator=None):
    """`copies` noisy versions of X, shape (copies, n, d): X + N(0, sigma^2) noise."""
    noise = torch.randn((copies, *X.shape), generator=generator,
                        dtype=torch.float32, device=X.device)
    return X + sigma * noise.to(X.dtype)


def dropout_copies(X, p, copies, generator=None):
    """`copies` inverted-dropout versions of X, shape (copies, n, d).

    Each entry is kept with probability 1 - p and then scaled by 1/(1-p).
    (Same rule as `dropout_layer`, with an explicit generator.)
    """
    p = check_p(p)
    u = torch.rand((copies, *X.shape), generator=generator,
                   dtype=torch.float32, device=X.device)
    return X * (u >= p).to(X.dtype) / (1 - p)


def stacked_least_squares(X_copies, y):
    """Least squares on all copies stacked into one tall problem.

    X_copies has shape (K, n, d); the targets y (n,) are repeated K times.
    Equivalent to minimizing (1/K) sum_k sum_i (y_i - x_ki^T w)^2. Solved by
    the normal equations (sum_k X_k^T X_k) w = sum_k X_k^T y, which for a few
    columns in float64 is as accurate as a QR solve and several times faster.
    """
    G = torch.einsum("kni,knj->ij", X_copies, X_copies)
    b = torch.einsum("kni,n->i", X_copies, y)
    return torch.linalg.solve(G, b)


def least_squares_path(X_copies, y, Ks):
    """The stacked least-squares solution on the first K copies, for each K in Ks.

    Returns a (len(Ks), d) tensor; row j equals stacked_least_squares(X_copies[:Ks[j]], y).
    One pass over the copies: running sums of X_k^T X_k and X_k^T y.
    """
    G = torch.einsum("kni,knj->kij", X_copies, X_copies).cumsum(0)
    b = torch.einsum("kni,n->ki", X_copies, y).cumsum(0)
    idx = torch.as_tensor(Ks, device=X_copies.device) - 1
    return torch.linalg.solve(G[idx], b[idx])


def noisy_least_squares(X, y, sigma, copies, generator=None):
    """Least squares on `copies` copies of X, each with fresh Gaussian noise of std sigma.

    As copies grows it converges to ridge(X, y, lam=n * sigma**2).
    """
    return stacked_least_squares(gaussian_copies(X, sigma, copies, generator), y)


def dropout_least_squares(X, y, p, copies, generator=None):
    """Least squares on `copies` inverted-dropout copies of X.

    As copies grows it converges to dropout_ridge(X, y, p).
    """
    return stacked_least_squares(dropout_copies(X, p, copies, generator), y)


def relative_distance(w, w_ref):
    """||w - w_ref|| / ||w_ref||."""
    return (torch.linalg.norm(w - w_ref) / torch.linalg.norm(w_ref)).item()


def predicted_distance(X, y, w_limit, make_copies, copies, draws=4000, generator=None):
    """The root-mean-square of ||w_K - w_limit|| expected after K = `copies` copies.

    w_K solves G_K w = b_K, with G_K and b_K averages of K independent terms
    G_k = X_k^T X_k and b_k = X_k^T y whose means satisfy E[G] w_limit = E[b].
    To first order, w_K - w_limit = E[G]^-1 (1/K) sum_k (b_k - G_k w_limit):
    an average of K independent zero-mean vectors z_k. Hence
    E||w_K - w_limit||^2 ~ E||z||^2 / K, with E||z||^2 estimated here from
    `draws` single copies drawn by make_copies(draws, generator).
    """
    Xk = make_copies(draws, generator)                    # (draws, n, d)
    G = torch.einsum("kni,knj->kij", Xk, Xk)
    b = torch.einsum("kni,n->ki", Xk, y)
    A = G.mean(0)                                         # estimates E[G]
    z = torch.linalg.solve(A, (b - G @ w_limit).T).T      # (draws, d)
    return (z.pow(2).sum(1).mean() / copies).sqrt().item()


# ------------------------------------------------------- dropout's moments

Moments = namedtuple("Moments", ["mean", "var", "mean_se", "var_se", "zero_fraction"])


def dropout_samples(h, p, draws, seed=None, layer=dropout_layer):
    """`draws` independent outputs of layer(h, p), stacked: shape (draws, *h.shape).

    With a seed, the draws are repeatable and the global random state is left
    as it was. `layer` defaults to the chapter's `dropout_layer`.
    """
    X = h.unsqueeze(0).expand(draws, *h.shape).clone()
    if seed is None:
        return layer(X, p)
    devices = [h.device] if h.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return layer(X, p)


def moments(samples):
    """Mean and variance along dim 0, with their standard errors, and the fraction of zeros.

    All in float64. The standard error of the (unbiased) sample variance is
    SE = sqrt((m4 - (N-3)/(N-1) var^2) / N), m4 the fourth central moment: exact
    for any distribution, with the sample moments plugged in. (The usual
    large-N form sqrt((m4 - var^2) / N) drops the second term, which matters
    when m4 = var^2, as for a unit dropped with probability p = 0.5.)
    """
    samples = samples.double()  # accumulate in float64 whatever the layer's dtype
    N = samples.shape[0]
    mean = samples.mean(0)
    centred = samples - mean
    var = centred.pow(2).mean(0) * N / (N - 1)
    m4 = centred.pow(4).mean(0)
    var_of_var = (m4 - (N - 3) / (N - 1) * var ** 2) / N
    return Moments(mean=mean, var=var, mean_se=(var / N).sqrt(),
                   var_se=var_of_var.clamp(min=0).sqrt(),
                   zero_fraction=(samples == 0).to(samples.dtype).mean(0))


def dropout_moments(h, p, draws, seed=None, layer=dropout_layer):
    """Monte Carlo mean and variance of layer(h, p) per unit, with standard errors.

    Theory for inverted dropout: mean h, variance p/(1-p) * h^2, zeros p.
    """
    return moments(dropout_samples(h, p, draws, seed=seed, layer=layer))
