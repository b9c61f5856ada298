"""Exercise 8's checks beyond their tables (tests/test_checks_tables.py walks those):
what passes, tips, the caller's random state, and gradient_errors, which takes numbers."""
import torch

from dropout_lab import checks


def test_dropout_layer_check_passes_on_the_reference(verdict):
    passed, line = verdict(checks.check_dropout_layer, checks.ex08_backward.dropout_layer)
    assert passed, line
    assert "meta" in line and "tip" not in line


def test_missing_value_error_is_a_tip_not_a_failure(verdict):
    def no_validation(X, p):
        if p == 1:
            return torch.zeros_like(X)
        return X * (torch.rand_like(X) >= p).to(X.dtype) / (1 - p)
    passed, line = verdict(checks.check_dropout_layer, no_validation)
    assert passed and "should raise ValueError" in line


def test_check_leaves_the_callers_random_state_alone(capsys):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_dropout_layer(checks.ex08_backward.dropout_layer)
    assert torch.equal(torch.rand(3), expected)


def test_rel_error():
    assert checks.rel_error(torch.ones(3), torch.ones(3)) == 0
    assert abs(checks.rel_error(torch.tensor([1.0]), torch.tensor([3.0])) - 0.5) < 1e-12


def test_gradient_errors_check(verdict):
    assert verdict(checks.check_gradient_errors, {"autograd": 0.0, "numerical": 3e-11})[0]
    passed, line = verdict(checks.check_gradient_errors, {"autograd": 0.0, "numerical": 0.9})
    assert not passed and "SAME in every evaluation" in line
    passed, line = verdict(checks.check_gradient_errors, {"autograd": 0.5, "numerical": 0.5})
    assert not passed and "disagree" in line
    passed, line = verdict(checks.check_gradient_errors, {"autograd": float("nan")})
    assert not passed
    passed, line = verdict(checks.check_gradient_errors, None)
    assert not passed and "dict of relative errors" in line
