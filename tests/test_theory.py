"""The claims of the pages "Why noise regularizes" and "The expectation argument".

Every random draw has a fixed seed, so each test is deterministic. The
tolerances are nevertheless set from the Monte Carlo error each estimate is
expected to have (a generous multiple of it), so that they would hold for
(almost) any seed and do not pass only by luck of the chosen one.
"""
import pytest
import torch

from dropout_lab import theory as th

SEEDS = range(5)


@pytest.fixture(scope="module")
def problem():
    return th.synthetic_regression(n=50, d=5, seed=0)


def gaussian(X, sigma):
    return lambda copies, g: th.gaussian_copies(X, sigma, copies, g)


def bernoulli(X, p):
    return lambda copies, g: th.dropout_copies(X, p, copies, g)


def relative_rms(X, y, w_limit, make_copies, copies):
    """Predicted RMS of ||w_K - w_limit|| / ||w_limit|| (see th.predicted_distance)."""
    g = torch.Generator().manual_seed(1234)
    rms = th.predicted_distance(X, y, w_limit, make_copies, copies, draws=2000, generator=g)
    return rms / torch.linalg.norm(w_limit).item()


def test_closed_forms_reduce_to_least_squares(problem):
    X, y, _ = problem
    w_ls = th.least_squares(X, y)
    torch.testing.assert_close(th.ridge(X, y, 0.0), w_ls)
    torch.testing.assert_close(th.dropout_ridge(X, y, 0.0), w_ls)
    with pytest.raises(ValueError):
        th.dropout_ridge(X, y, 1.0)


def test_path_matches_direct_fit(problem):
    X, y, _ = problem
    copies = th.gaussian_copies(X, 0.5, 40, torch.Generator().manual_seed(0))
    path = th.least_squares_path(copies, y, [1, 7, 40])
    torch.testing.assert_close(path[1], th.stacked_least_squares(copies[:7], y))
    torch.testing.assert_close(path[2], th.stacked_least_squares(copies, y))


# Large K: the predicted Monte Carlo error (relative RMS) is below 1 %.
# ||w_K - w_limit||^2 / E||w_K - w_limit||^2 is, to first order, a weighted sum
# of chi-square variables with mean 1; even with a single degree of freedom
# P(chi2_1 > 5^2) < 1e-6, so "5 times the RMS" cannot fail by bad luck.
K_LARGE = 5_000
MULTIPLE = 5


@pytest.mark.parametrize("sigma", [0.3, 1.0])
def test_noisy_inputs_give_ridge(problem, sigma):
    X, y, _ = problem
    n = X.shape[0]
    w_ridge = th.ridge(X, y, lam=n * sigma ** 2)
    w_noisy = th.noisy_least_squares(X, y, sigma, K_LARGE, torch.Generator().manual_seed(0))
    rms = relative_rms(X, y, w_ridge, gaussian(X, sigma), K_LARGE)
    assert rms < 0.01
    assert th.relative_distance(w_noisy, w_ridge) < MULTIPLE * rms
    # ...and the ridge limit is far from plain least squares: the test has teeth.
    assert th.relative_distance(th.least_squares(X, y), w_ridge) > 5 * MULTIPLE * rms


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_inputs_give_dropout_ridge(problem, p):
    X, y, _ = problem
    w_limit = th.dropout_ridge(X, y, p)
    w_drop = th.dropout_least_squares(X, y, p, K_LARGE, torch.Generator().manual_seed(0))
    rms = relative_rms(X, y, w_limit, bernoulli(X, p), K_LARGE)
    assert rms < 0.01
    assert th.relative_distance(w_drop, w_limit) < MULTIPLE * rms
    assert th.relative_distance(th.least_squares(X, y), w_limit) > 5 * MULTIPLE * rms
    # Dropout's penalty is not plain ridge: the isotropic ridge with the same
    # average penalty misses by much more than the Monte Carlo error.
    lam = p / (1 - p) * (X ** 2).sum(0).mean()
    assert th.relative_distance(th.ridge(X, y, lam), w_limit) > 5 * MULTIPLE * rms


@pytest.mark.parametrize("kind, level", [("gaussian", 0.5), ("dropout", 0.3)])
def test_distance_shrinks_like_one_over_sqrt_K(problem, kind, level):
    """From K = 10 to K = 1000 the RMS distance should drop 10-fold; averaged over
    5 seeds we ask for a 3-fold drop. The RMS over seeds also matches the
    first-order prediction within a factor of 2 (12 seeds, K = 100)."""
    X, y, _ = problem
    n = X.shape[0]
    if kind == "gaussian":
        w_limit, make = th.ridge(X, y, n * level ** 2), gaussian(X, level)
    else:
        w_limit, make = th.dropout_ridge(X, y, level), bernoulli(X, level)
    Ks = [10, 100, 1000]
    dist = torch.tensor([[th.relative_distance(w, w_limit) for w in
                          th.least_squares_path(make(Ks[-1], torch.Generator().manual_seed(s)),
                                                y, Ks)]
                         for s in range(12)])          # (seed, K)
    assert dist[:5, 2].mean() < dist[:5, 0].mean() / 3
    rms_seen = dist[:, 1].pow(2).mean().sqrt().item()
    rms_predicted = relative_rms(X, y, w_limit, make, Ks[1])
    assert 0.5 < rms_seen / rms_predicted < 2


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5])
def test_dropout_moments_match_theory(p):
    h = torch.tensor([0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
    N = 100_000
    m = th.dropout_moments(h, p, N, seed=0)
    h64 = h.double()
    assert ((m.mean - h64).abs() <= 5 * m.mean_se + 1e-12).all()
    assert ((m.var - p / (1 - p) * h64 ** 2).abs() <= 5 * m.var_se + 1e-12).all()
    zero_se = (p * (1 - p) / N) ** 0.5
    assert ((m.zero_fraction - p).abs() <= 5 * zero_se + 1e-12).all()


def test_dropout_samples_are_repeatable_and_leave_global_state_alone():
    h = torch.ones(4)
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    a = th.dropout_samples(h, 0.5, 10, seed=1)
    after = torch.rand(3)
    b = th.dropout_samples(h, 0.5, 10, seed=1)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(before, after)
