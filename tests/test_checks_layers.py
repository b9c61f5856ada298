"""The layer checks PASS on the library's solution and FAIL, with the right hint,
on each classic wrong answer (SOURCES.md lists them)."""
import pytest
import torch

import dropout_lab as dl
from dropout_lab import checks


# ---------------------------------------------------------------- dropout_layer

def randn_mask(X, p):
    return X * torch.randn_like(X) / (1 - p)


def randn_threshold(X, p):
    return X * (torch.randn_like(X) >= p).to(X.dtype) / (1 - p)


def no_scaling(X, p):
    return X * (torch.rand_like(X) >= p).to(X.dtype)


def keep_drop_confused(X, p):
    return X * (torch.rand_like(X) < p).to(X.dtype) / (1 - p)


def shared_across_batch(X, p):
    return X * (torch.rand(X.shape[1:], dtype=X.dtype) >= p).to(X.dtype) / (1 - p)


def double_scaling(X, p):  # inverted dropout, then (1-p) on top (the test-time rule)
    return X * (torch.rand_like(X) >= p).to(X.dtype) / (1 - p) * (1 - p)


def times_keep(X, p):
    return X * (torch.rand_like(X) >= p).to(X.dtype) * (1 - p)


def mask_on_cpu(X, p):
    if p == 1:
        return torch.zeros_like(X)
    return X * (torch.rand(X.shape) >= p).float() / (1 - p)


def mask_on_cpu_with_item(X, p):  # meta cannot run .item(): the factory watch must see it
    if X.sum().item() == 0 or p == 1:
        return X * 0
    return X * (torch.rand(X.shape) >= p).float() / (1 - p)


def nan_at_one(X, p):
    return X * (torch.rand_like(X) >= p).to(X.dtype) / (1 - p)


def float32_mask(X, p):
    if p == 1:
        return torch.zeros_like(X)
    return (X * (torch.rand_like(X) >= p) / (1 - p)).float()


def identity(X, p):
    return X


def in_place(X, p):
    if p == 1:
        return torch.zeros_like(X)
    X *= (torch.rand_like(X) >= p).to(X.dtype) / (1 - p)
    return X


def todo(X, p):
    raise NotImplementedError("TODO: draw a 0/1 mask")


WRONG_LAYERS = [
    (randn_mask, "torch.rand, not torch.randn"),
    (randn_threshold, "not torch.randn"),
    (no_scaling, "did you scale by 1/(1-p)?"),
    (keep_drop_confused, "keep and drop probabilities are swapped"),
    (shared_across_batch, "one mask per element, not one per feature shared across the batch"),
    (double_scaling, "did you scale by 1/(1-p)?"),
    (times_keep, "off by a factor 0.64"),
    (mask_on_cpu, "make the mask on X's device"),
    (mask_on_cpu_with_item, "without device="),
    (nan_at_one, "p = 1 gave NaN"),
    (float32_mask, "make the mask in X's dtype"),
    (identity, "no element was set to zero"),
    (in_place, "X was changed in place"),
    (todo, "not implemented yet (TODO: draw a 0/1 mask)"),
]


@pytest.mark.parametrize("fn, hint", WRONG_LAYERS, ids=[f.__name__ for f, _ in WRONG_LAYERS])
def test_dropout_layer_check_fails_with_hint(fn, hint, verdict):
    passed, line = verdict(checks.check_dropout_layer, fn)
    assert not passed and hint in line, line


def test_dropout_layer_check_passes_on_the_library(verdict):
    passed, line = verdict(checks.check_dropout_layer, dl.dropout_layer)
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
    checks.check_dropout_layer(dl.dropout_layer)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- forward / backward

def good_forward(X, p):
    if p == 1:
        return torch.zeros_like(X), torch.zeros_like(X)
    mask = (torch.rand_like(X) >= p).to(X.dtype)
    return X * mask / (1 - p), mask


def good_backward(dout, mask, p):
    return torch.zeros_like(dout) if p == 1 else dout * mask / (1 - p)


def test_forward_check(verdict):
    assert verdict(checks.check_dropout_forward, good_forward)[0]

    def scaled_mask(X, p):
        out, mask = good_forward(X, p)
        return out, mask / (1 - p)
    passed, line = verdict(checks.check_dropout_forward, scaled_mask)
    assert not passed and "only 0 and 1" in line
    passed, line = verdict(checks.check_dropout_forward, lambda X, p: good_forward(X, p)[0])
    assert not passed and "return a pair (out, mask)" in line


WRONG_BACKWARDS = [
    (lambda dout, mask, p: dout * mask, "lacks the factor 1/(1-p)"),
    (lambda dout, mask, p: dout * mask * (1 - p), "do not multiply"),
    (lambda dout, mask, p: dout / (1 - p), "multiply by the mask"),
    (lambda dout, mask, p: mask / (1 - p), "chain rule"),
    (lambda dout, mask, p: (dout * mask / (1 - p)).float(), "keep the dtype"),
    (lambda dout, mask, p: dout * mask / (1 - p), "p = 1 gave NaN"),
    (lambda dout, mask, p: dout.T, "shape"),
]


@pytest.mark.parametrize("fn, hint", WRONG_BACKWARDS, ids=[h for _, h in WRONG_BACKWARDS])
def test_backward_check_fails_with_hint(fn, hint, verdict):
    passed, line = verdict(checks.check_dropout_backward, fn)
    assert not passed and hint in line, line


def test_backward_check_passes(verdict):
    passed, line = verdict(checks.check_dropout_backward, good_backward)
    assert passed and "numerical gradient" in line


# ---------------------------------------------------------------- numerical gradient

def centered(f, X, dout, h=1e-6):
    grad = torch.zeros_like(X)
    for i in range(X.numel()):
        old = X.view(-1)[i].item()
        X.view(-1)[i] = old + h
        plus = (f(X) * dout).sum()
        X.view(-1)[i] = old - h
        minus = (f(X) * dout).sum()
        X.view(-1)[i] = old
        grad.view(-1)[i] = (plus - minus) / (2 * h)
    return grad


def one_sided(f, X, dout, h=1e-6):
    grad = torch.zeros_like(X)
    base = (f(X) * dout).sum()
    for i in range(X.numel()):
        Xp = X.clone()
        Xp.view(-1)[i] += h
        grad.view(-1)[i] = ((f(Xp) * dout).sum() - base) / h
    return grad


def test_numerical_gradient_check(verdict):
    assert verdict(checks.check_numerical_gradient, centered)[0]
    passed, line = verdict(checks.check_numerical_gradient, one_sided)
    assert not passed and "one-sided" in line, line
    passed, line = verdict(checks.check_numerical_gradient,
                           lambda f, X, d, h=1e-6: 2 * centered(f, X, d, h))
    assert not passed and "factor 2" in line, line

    def not_restored(f, X, dout, h=1e-6):
        grad = centered(f, X, dout, h)
        X.view(-1)[0] += h
        return grad
    passed, line = verdict(checks.check_numerical_gradient, not_restored)
    assert not passed and "put X[i] back" in line, line


# ---------------------------------------------------------------- MLP backward

def mlp(X, y, params, mask, p, scale_back=True, mask_back=True, relu_back=True, mean=True):
    """Linear-ReLU-dropout-Linear + softmax cross-entropy, by hand; flags break the backward."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    z1 = X @ W1 + b1
    a1 = z1.clamp_min(0)
    h = a1 * mask / (1 - p)
    scores = h @ W2 + b2
    shifted = scores - scores.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    N = X.shape[0]
    loss = -log_probs[torch.arange(N), y].mean()
    dscores = log_probs.exp()
    dscores[torch.arange(N), y] -= 1
    dscores = dscores / N if mean else dscores
    dh = dscores @ W2.T
    da1 = dh * (mask if mask_back else 1) / ((1 - p) if scale_back else 1)
    dz1 = da1 * (z1 > 0) if relu_back else da1
    grads = {"W1": X.T @ dz1, "b1": dz1.sum(0), "W2": h.T @ dscores, "b2": dscores.sum(0)}
    return loss, grads


@pytest.mark.parametrize("flags, hint", [
    ({"scale_back": False}, "1/(1-p) is missing in the backward pass"),
    ({"mask_back": False}, "mask is missing in the backward pass"),
    ({"relu_back": False}, "ReLU's gradient is missing"),
    ({"mean": False}, "N times too large"),
])
def test_mlp_check_fails_with_hint(flags, hint, verdict):
    passed, line = verdict(checks.check_mlp_backward, lambda *a: mlp(*a, **flags))
    assert not passed and hint in line, line


def test_mlp_check_passes(verdict):
    passed, line = verdict(checks.check_mlp_backward, mlp)
    assert passed and "W1" in line


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
