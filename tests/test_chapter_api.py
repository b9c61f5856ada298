"""The scratch layer against PyTorch's, micrograd-style: same statistics, same
scaling, and the device behaviour that the chapter's pages demonstrate.

The bounds are computed, not tuned: with n independent draws, a fraction has
standard error sqrt(p(1-p)/n), and the mean of inverted dropout applied to ones
has standard error sqrt(p/(1-p)/n). Six standard errors would be exceeded by
chance about once in 5e8 runs, and the seed is fixed, so the tests cannot
flake.
"""
import math

import pytest
import torch
from torch import nn

import dropout_lab as dl

N = 1_000_000
SIGMAS = 6


def statistics(out):
    """Zero fraction, mean, and the distinct non-zero values of `out`."""
    return ((out == 0).double().mean().item(), out.double().mean().item(),
            out[out != 0].unique())


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_scratch_layer_matches_nn_dropout_in_train_mode(p):
    torch.manual_seed(0)
    ones = torch.ones(N)
    ours = statistics(dl.dropout_layer(ones, p))
    theirs = statistics(nn.Dropout(p).train()(ones))
    zero_bound = SIGMAS * math.sqrt(p * (1 - p) / N)
    mean_bound = SIGMAS * math.sqrt(p / (1 - p) / N)
    for zero_fraction, mean, survivors in (ours, theirs):
        assert abs(zero_fraction - p) < zero_bound
        assert abs(mean - 1.0) < mean_bound
        # every survivor is scaled by exactly 1/(1-p) (up to float32 rounding)
        assert survivors.numel() == 1
        assert survivors.item() == pytest.approx(1 / (1 - p), rel=1e-6)
    # and the two implementations agree with each other (two bounds apart)
    assert abs(ours[0] - theirs[0]) < 2 * zero_bound
    assert abs(ours[1] - theirs[1]) < 2 * mean_bound


def test_nn_dropout_eval_mode_is_identity():
    X = torch.randn(64, 32)
    assert torch.equal(nn.Dropout(0.5).eval()(X), X)
    assert torch.equal(dl.dropout_layer(X, 0.0), X)


def test_edge_cases_agree_with_nn_dropout():
    X = torch.randn(64, 32)
    # p = 1: zeros, not NaN
    assert torch.equal(dl.dropout_layer(X, 1.0), nn.Dropout(1.0)(X))
    assert torch.equal(dl.dropout_layer(X, 0.0), nn.Dropout(0.0)(X))
    with pytest.raises(ValueError):
        dl.dropout_layer(X, 1.5)
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def dropout_cpu_mask(X, p):
    """The classic from-scratch code: the mask is made on the CPU."""
    mask = (torch.rand(X.shape) > p).float()
    return mask * X / (1.0 - p)


def test_cpu_mask_fails_off_the_cpu_but_dropout_layer_does_not():
    # The meta device has CUDA's device checks without needing a GPU.
    X = torch.empty(16, 16, device="meta")
    with pytest.raises(RuntimeError, match="device"):
        dropout_cpu_mask(X, 0.5)
    out = dl.dropout_layer(X, 0.5)
    assert (out.device, out.shape, out.dtype) == (X.device, X.shape, X.dtype)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_mask_fails_on_cuda_but_dropout_layer_does_not():
    X = torch.ones(16, 16, device="cuda")
    with pytest.raises(RuntimeError, match="device"):
        dropout_cpu_mask(X, 0.5)
    assert dl.dropout_layer(X, 0.5).device == X.device
