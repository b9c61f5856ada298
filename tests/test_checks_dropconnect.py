"""The checks of Exercise 5 (DropConnect) pass the solution and fail the classic
wrong answers, each with its own hint."""
import pytest
import torch
from torch.nn import functional as F

from dropout_lab.checks.ex05_dropconnect import (check_dropconnect_linear,
                                                 check_dropconnect_mc)


# ----------------------------------------------------------- dropconnect_linear

def solution(X, W, b, p):  # as in solutions/05_dropconnect.md
    if p == 1:
        return F.linear(X, W * 0, b)
    mask = (torch.rand_like(W) >= p).to(W.dtype)
    return F.linear(X, W * mask / (1 - p), b)


def activation_mask(X, W, b, p):
    out = F.linear(X, W, b)
    return out * (torch.rand_like(out) >= p) / (1 - p)


def activation_mask_before_bias(X, W, b, p):
    out = X @ W.T
    return out * (torch.rand_like(out) >= p) / (1 - p) + b


def input_mask(X, W, b, p):
    return F.linear(X * (torch.rand_like(X) >= p) / (1 - p), W, b)


def per_example_mask(X, W, b, p):
    masks = torch.rand(len(X), *W.shape, dtype=W.dtype) >= p
    return torch.einsum("bi,boi->bo", X, W * masks) / (1 - p) + b


def no_scaling(X, W, b, p):
    return F.linear(X, W * (torch.rand_like(W) >= p), b)


def times_keep(X, W, b, p):
    return F.linear(X, W * (torch.rand_like(W) >= p) * (1 - p), b)


def randn_threshold(X, W, b, p):
    return F.linear(X, W * (torch.randn_like(W) >= p) / (1 - p), b)


def randn_values(X, W, b, p):
    return F.linear(X, W * torch.randn_like(W), b)


def keep_drop_swapped(X, W, b, p):
    return F.linear(X, W * (torch.rand_like(W) < p) / (1 - p), b)


def scaled_by_one_over_p(X, W, b, p):
    return F.linear(X, W * (torch.rand_like(W) >= p) / p, b) if p > 0 else F.linear(X, W, b)


def bias_masked(X, W, b, p):
    return F.linear(X, W * (torch.rand_like(W) >= p) / (1 - p), b * (torch.rand_like(b) >= p))


def in_place(X, W, b, p):
    with torch.no_grad():
        W *= (torch.rand_like(W) >= p) / (1 - p) if p < 1 else 0
    return F.linear(X, W, b)


def through_data(X, W, b, p):
    return F.linear(X, W.data * (torch.rand_like(W) >= p) / (1 - p), b)


def nan_at_one(X, W, b, p):
    return F.linear(X, W * (torch.rand_like(W) >= p) / (1 - p), b)


def cpu_mask(X, W, b, p):
    if p == 1:
        return F.linear(X, W * 0, b)
    return F.linear(X, W * (torch.rand(W.shape) >= p) / (1 - p), b)


def todo(X, W, b, p):
    raise NotImplementedError("TODO: draw a 0/1 mask of W's shape")


def test_solution_passes(capsys):
    assert check_dropconnect_linear(solution)
    assert capsys.readouterr().out.startswith("[PASS] dropconnect_linear:")


@pytest.mark.parametrize("wrong, hint", [
    (activation_mask, "OUTPUT's shape"),
    (activation_mask_before_bias, "OUTPUT's shape"),
    (input_mask, "identical input rows gave different output rows"),
    (per_example_mask, "one mask per example"),
    (no_scaling, "not scaled"),
    (times_keep, "multiplied by (1-p)"),
    (randn_threshold, "torch.randn"),
    (randn_values, "values other than 0"),
    (keep_drop_swapped, "keep and drop are swapped"),
    (scaled_by_one_over_p, "scaled by 1/p"),
    (bias_masked, "not the bias"),
    (in_place, "in place"),
    (through_data, "no gradient reaches W"),
    (nan_at_one, "p = 1 must give b"),
    (cpu_mask, "on the CPU"),
    (todo, "not implemented yet"),
])
def test_wrong_answers_fail_with_their_hint(wrong, hint, capsys):
    assert not check_dropconnect_linear(wrong)
    out = capsys.readouterr().out
    assert out.startswith("[FAIL] dropconnect_linear:") and hint in out, out
    assert out.count("\n") == 1  # one line, for the grader


def test_check_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_dropconnect_linear(solution)
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------ mc_predict

def mc_solution(model, X, k):  # as in solutions/05_dropconnect.md
    was_training = model.training
    model.train()
    with torch.no_grad():
        probs = sum(F.softmax(model(X), dim=1) for _ in range(k)) / k
    model.train(was_training)
    return probs


def mc_eval_mode(model, X, k):
    model.eval()
    with torch.no_grad():
        return sum(F.softmax(model(X), dim=1) for _ in range(k)) / k


def mc_logits(model, X, k):
    model.train()
    with torch.no_grad():
        logits = sum(model(X) for _ in range(k)) / k
    model.eval()
    return logits


def mc_softmax_of_mean_logits(model, X, k):
    return F.softmax(mc_logits(model, X, k), dim=1)


def mc_one_pass(model, X, k):
    return mc_solution(model, X, 1)


def mc_left_training(model, X, k):
    model.train()
    with torch.no_grad():
        return sum(F.softmax(model(X), dim=1) for _ in range(k)) / k


def mc_with_graph(model, X, k):
    model.train()
    probs = sum(F.softmax(model(X), dim=1) for _ in range(k)) / k
    model.eval()
    return probs


def test_mc_solution_passes(capsys):
    assert check_dropconnect_mc(mc_solution)
    assert capsys.readouterr().out.startswith("[PASS] dropconnect_mc:")


@pytest.mark.parametrize("wrong, hint", [
    (mc_eval_mode, "the noise was off"),
    (mc_logits, "not probabilities"),
    (mc_softmax_of_mean_logits, "geometric mean"),
    (mc_one_pass, "passes, not k"),
    (mc_left_training, "left the model in train mode"),
    (mc_with_graph, "torch.no_grad()"),
])
def test_mc_wrong_answers_fail_with_their_hint(wrong, hint, capsys):
    assert not check_dropconnect_mc(wrong)
    out = capsys.readouterr().out
    assert out.startswith("[FAIL] dropconnect_mc:") and hint in out, out
