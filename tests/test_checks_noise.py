"""The checks of Exercise 6 (new noise schemes) pass the solutions and fail the
classic wrong answers, each with its own hint."""
import math

import pytest
import torch

from dropout_lab.checks.ex06_noise_schemes import (check_gaussian_dropout,
                                                   check_noise_moments, check_noise_unbiased)


# ------------------------------------------------------------- gaussian_dropout

def gaussian_dropout(h, p):  # as in solutions/06_noise_schemes.md
    return h * (1 + math.sqrt(p / (1 - p)) * torch.randn_like(h))


def sigma_sqrt_p(h, p):
    return h * (1 + math.sqrt(p) * torch.randn_like(h))


def keep_drop_swapped(h, p):  # Srivastava's (1-q)/q with the drop probability put in for q
    return h * (1 + math.sqrt((1 - p) / p) * torch.randn_like(h)) if p > 0 else h


def no_square_root(h, p):
    return h * (1 + p / (1 - p) * torch.randn_like(h))


def unit_sigma(h, p):
    return h * (1 + torch.randn_like(h)) if p > 0 else h


def unscaled_mean(h, p):  # matches the unscaled Bernoulli mask: N(1-p, p(1-p))
    return h * ((1 - p) + math.sqrt(p * (1 - p)) * torch.randn_like(h))


def missing_one(h, p):
    return h * math.sqrt(p / (1 - p)) * torch.randn_like(h)


def additive(h, p):
    return h + math.sqrt(p / (1 - p)) * torch.randn_like(h)


def bernoulli(h, p):
    return h * (torch.rand_like(h) >= p) / (1 - p)


def uniform_same_variance(h, p):
    a = math.sqrt(3 * p / (1 - p))
    return h * (1 + a * (2 * torch.rand_like(h) - 1))


def shared_across_batch(h, p):
    return h * (1 + math.sqrt(p / (1 - p)) * torch.randn(h.shape[-1], dtype=h.dtype))


def cpu_noise(h, p):
    return h * (1 + math.sqrt(p / (1 - p)) * torch.randn(h.shape, dtype=h.dtype))


def todo(h, p):
    raise NotImplementedError("TODO: h * (1 + sigma * eps)")


def test_gaussian_solution_passes(capsys):
    assert check_gaussian_dropout(gaussian_dropout)
    assert capsys.readouterr().out.startswith("[PASS] gaussian_dropout:")


@pytest.mark.parametrize("wrong, hint", [
    (sigma_sqrt_p, "sigma = sqrt(p)"),
    (keep_drop_swapped, "keep and drop are swapped"),
    (no_square_root, "square root is missing"),
    (unit_sigma, "eps is not scaled"),
    (unscaled_mean, "the noise is unscaled"),
    (missing_one, "you forgot the 1"),
    (additive, "additive"),
    (bernoulli, "Bernoulli dropout"),
    (uniform_same_variance, "a Gaussian has 4.6%"),
    (shared_across_batch, "shared by the whole batch"),
    (cpu_noise, "on the CPU"),
    (todo, "not implemented yet"),
])
def test_gaussian_wrong_answers_fail_with_their_hint(wrong, hint, capsys):
    assert not check_gaussian_dropout(wrong)
    out = capsys.readouterr().out
    assert out.startswith("[FAIL] gaussian_dropout:") and hint in out, out
    assert out.count("\n") == 1  # one line, for the grader


# ------------------------------------------------------------------ mc_moments

def mc_moments(noise, h, n_draws=100_000):  # as in solutions/06_noise_schemes.md
    draws = noise(h.expand(n_draws, *h.shape).contiguous())
    mean, var = draws.mean(0), draws.var(0)
    return mean, torch.sqrt(var / n_draws), var


def moments_in_a_loop(noise, h, n_draws=100_000):
    draws = torch.stack([noise(h) for _ in range(n_draws)])
    return draws.mean(0), draws.std(0) / math.sqrt(n_draws), draws.var(0)


def se_is_std(noise, h, n_draws=100_000):
    mean, _, var = mc_moments(noise, h, n_draws)
    return mean, var.sqrt(), var


def one_draw_reused(noise, h, n_draws=100_000):
    draws = noise(h).expand(n_draws, *h.shape)
    return draws.mean(0), draws.std(0) / math.sqrt(n_draws), draws.var(0)


def wrong_axis(noise, h, n_draws=100_000):
    draws = noise(h.expand(n_draws, *h.shape).contiguous())
    return draws.mean(1), draws.std(1) / math.sqrt(h.numel()), draws.var(1)


def too_few_draws(noise, h, n_draws=100_000):
    return mc_moments(noise, h, 100)


def test_moments_solutions_pass(capsys):
    assert check_noise_moments(mc_moments)
    assert check_noise_moments(moments_in_a_loop)
    assert capsys.readouterr().out.count("[PASS] noise_moments:") == 2


@pytest.mark.parametrize("wrong, hint", [
    (se_is_std, "std/sqrt(n)"),
    (one_draw_reused, "every draw is the same one"),
    (wrong_axis, "one estimate per element"),
    (too_few_draws, "fewer than n_draws"),
])
def test_moments_wrong_answers_fail_with_their_hint(wrong, hint, capsys):
    assert not check_noise_moments(wrong)
    out = capsys.readouterr().out
    assert out.startswith("[FAIL] noise_moments:") and hint in out, out


# ---------------------------------------------------------------- noise_unbiased

def uniform_noise(h, p):  # the scheme of solutions/06_noise_schemes.md
    a = math.sqrt(3 * p / (1 - p))
    return h * (1 + a * (2 * torch.rand_like(h) - 1))


def keep_unscaled(h, p):
    return h * (torch.rand_like(h) >= p)


@pytest.mark.parametrize("unbiased", [uniform_noise, gaussian_dropout, bernoulli])
def test_unbiased_schemes_pass(unbiased, capsys):
    assert check_noise_unbiased(unbiased)
    assert capsys.readouterr().out.startswith("[PASS] noise_unbiased: unbiased")


def test_biased_scheme_fails_with_its_ratio(capsys):
    assert not check_noise_unbiased(keep_unscaled)
    out = capsys.readouterr().out
    assert out.startswith("[FAIL] noise_unbiased: biased: E[output]/h = 0.50"), out


@pytest.mark.parametrize("wrong, hint", [
    (lambda h, p: h, "there is no noise"),
    (lambda h, p: h.flatten(), "must keep the shape"),
    (todo, "not implemented yet"),
])
def test_unbiased_check_other_failures(wrong, hint, capsys):
    assert not check_noise_unbiased(wrong)
    out = capsys.readouterr().out
    assert out.startswith("[FAIL] noise_unbiased:") and hint in out, out
