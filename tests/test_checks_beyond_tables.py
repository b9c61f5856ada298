"""What the checks do beyond their tables (tests/test_checks_tables.py walks those):
the caller's random state, tips that are not failures, answers that need more
than one line to build, and the references themselves."""
import math

import pytest
import torch

from dropout_lab import checks
from dropout_lab.checks import ex04_weight_decay as ex04, ex06_noise_schemes as ex06
from dropout_lab.checks import ex09_training_set_size as ex09


@pytest.mark.parametrize("name", sorted(checks.REFERENCES))
def test_each_check_leaves_the_callers_random_state_alone(name, capsys):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    getattr(checks, f"check_{name}")(checks.REFERENCES[name])
    assert torch.equal(torch.rand(3), expected)


def test_reference_interaction_recovers_a_known_interaction():
    out = ex04.reference_interaction(ex04.synthetic_final())
    # the synthetic table has interaction -2·wd·p plus per-model noise of std 0.002
    for (wd, p), value in out.groupby(["weight_decay", "p1"]).interaction.mean().items():
        assert abs(value - (-2.0 * wd * p)) < 0.006


def test_moments_in_a_loop_pass(verdict):
    def moments_in_a_loop(noise, h, n_draws=100_000):
        draws = torch.stack([noise(h) for _ in range(n_draws)])
        return draws.mean(0), draws.std(0) / math.sqrt(n_draws), draws.var(0)
    assert verdict(ex06.check_noise_moments, moments_in_a_loop)[0]


def test_a_wrong_gaussian_variance_is_named_however_eps_was_drawn(verdict):
    def sigma_sqrt_p(h, p):  # the table's first mistake, drawn with torch.normal
        return h * torch.normal(1.0, math.sqrt(p), h.shape, dtype=h.dtype)
    passed, line = verdict(ex06.check_gaussian_dropout, sigma_sqrt_p)
    assert not passed and "sigma = sqrt(p)" in line, line


def test_a_reversed_gain_is_named_whatever_its_std(verdict):
    def reversed_and_unpaired(final, value="test_acc"):
        return -ex09._gain_unpaired(final, value).assign(std=0.01)
    passed, line = verdict(ex09.check_dropout_gain, reversed_and_unpaired)
    assert not passed and "sign is reversed" in line, line


@pytest.mark.parametrize("unbiased", [ex06.gaussian_dropout, ex06._bernoulli])
def test_other_unbiased_schemes_pass(unbiased, verdict):
    passed, line = verdict(ex06.check_noise_unbiased, unbiased)
    assert passed and line.startswith("[PASS] noise_unbiased: unbiased")


def test_dropout_layer_check_passes_on_the_reference(verdict):
    passed, line = verdict(checks.check_dropout_layer, checks.ex08_backward.dropout_layer)
    assert passed and "meta" in line and "tip" not in line, line


def test_missing_value_error_is_a_tip_not_a_failure(verdict):
    def no_validation(X, p):
        if p == 1:
            return torch.zeros_like(X)
        return X * (torch.rand_like(X) >= p).to(X.dtype) / (1 - p)
    passed, line = verdict(checks.check_dropout_layer, no_validation)
    assert passed and "should raise ValueError" in line


def test_rel_error():
    assert checks.rel_error(torch.ones(3), torch.ones(3)) == 0
    assert abs(checks.rel_error(torch.tensor([1.0]), torch.tensor([3.0])) - 0.5) < 1e-12


def test_gradient_errors_check(verdict):
    assert verdict(checks.check_gradient_errors, {"autograd": 0.0, "numerical": 3e-11})[0]
    for errors, hint in [({"autograd": 0.0, "numerical": 0.9}, "SAME in every evaluation"),
                         ({"autograd": 0.5, "numerical": 0.5}, "disagree"),
                         ({"autograd": float("nan")}, ""),
                         (None, "dict of relative errors")]:
        passed, line = verdict(checks.check_gradient_errors, errors)
        assert not passed and hint in line, line
