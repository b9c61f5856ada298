"""Exercise 6's checks beyond their tables (tests/test_checks_tables.py walks those)."""
import math

import pytest
import torch

from dropout_lab.checks import ex06_noise_schemes as ex06


def test_gaussian_failures_are_one_line(capsys):
    assert not ex06.check_gaussian_dropout(ex06.GAUSSIAN_MISTAKES[0].wrong)
    out = capsys.readouterr().out
    assert out.startswith("[FAIL] gaussian_dropout:") and out.count("\n") == 1  # for the grader


def test_moments_in_a_loop_pass(verdict):
    def moments_in_a_loop(noise, h, n_draws=100_000):
        draws = torch.stack([noise(h) for _ in range(n_draws)])
        return draws.mean(0), draws.std(0) / math.sqrt(n_draws), draws.var(0)
    assert verdict(ex06.check_noise_moments, moments_in_a_loop)[0]


@pytest.mark.parametrize("unbiased", [ex06.gaussian_dropout, ex06._bernoulli])
def test_other_unbiased_schemes_pass(unbiased, verdict):
    passed, line = verdict(ex06.check_noise_unbiased, unbiased)
    assert passed and line.startswith("[PASS] noise_unbiased: unbiased")
