"""dropout_layer: statistics with bounds that cannot flake, edge cases, dtypes, gradients."""
import math

import pytest
import torch

from dropout_lab import dropout_layer

N = 1_000_000


def sigmas(p, n):
    """Standard deviations of (fraction of zeros, mean of output) for X = ones of size n."""
    return math.sqrt(p * (1 - p) / n), math.sqrt(p / ((1 - p) * n))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mean_preserved_and_zero_fraction(p):
    # With X = 1, the zero count is Binomial(n, p); 8 standard deviations means a
    # false failure with probability < 1e-14, and the seed makes it deterministic.
    torch.manual_seed(0)
    out = dropout_layer(torch.ones(N), p)
    sd_zeros, sd_mean = sigmas(p, N)
    assert abs((out == 0).float().mean().item() - p) < 8 * sd_zeros
    assert abs(out.mean().item() - 1.0) < 8 * sd_mean
    assert torch.allclose(out[out != 0], torch.tensor(1 / (1 - p)))


def test_p_zero_returns_input_and_p_one_returns_zeros():
    X = torch.randn(4, 5)
    assert dropout_layer(X, 0.0) is X
    out = dropout_layer(X, 1.0)
    assert torch.equal(out, torch.zeros_like(X)) and not out.isnan().any()


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", None, True])
def test_bad_p_raises_value_error_naming_it(bad):
    with pytest.raises(ValueError, match="dropout probability p must be a number in"):
        dropout_layer(torch.ones(3), bad)


def test_non_float_input_is_a_clear_error():
    with pytest.raises(TypeError, match="floating-point"):
        dropout_layer(torch.ones(3, dtype=torch.int64), 0.5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_and_shapes_are_kept(dtype):
    X = torch.ones(2, 3, 4, 5, dtype=dtype)
    out = dropout_layer(X, 0.5)
    assert out.dtype == dtype and out.shape == X.shape
    assert set(out.unique().tolist()) <= {0.0, 2.0}


def test_masks_differ_between_rows():
    torch.manual_seed(1)
    out = dropout_layer(torch.ones(64, 100), 0.5)
    assert len({tuple(row.tolist()) for row in (out != 0).int()}) == 64


def test_gradient_is_mask_over_keep_probability():
    torch.manual_seed(2)
    X = torch.randn(50, 40, dtype=torch.float64, requires_grad=True)
    out = dropout_layer(X, 0.3)
    out.sum().backward()
    kept = (out != 0).to(X.dtype)
    assert torch.allclose(X.grad, kept / 0.7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_mask_made_on_the_device():
    X = torch.ones(1000, device="cuda")
    assert dropout_layer(X, 0.5).device.type == "cuda"


def test_mask_is_made_on_the_input_device():
    # "meta" tensors have no data: a mask drawn on the CPU would fail to combine.
    X = torch.empty(8, 8, device="meta")
    assert dropout_layer(X, 0.5).device.type == "meta"


@pytest.mark.parametrize("p", [0.001, 0.01, 0.5, 0.999])
def test_bfloat16_input_drops_at_the_asked_rate(p):
    # A uniform drawn in bfloat16 has 256 levels: p = 0.999 dropped everything and
    # p = 0.001 dropped 0.003. The mask must be drawn at full precision.
    torch.manual_seed(0)
    out = dropout_layer(torch.ones(N, dtype=torch.bfloat16), p)
    assert out.dtype == torch.bfloat16
    sd_zeros, _ = sigmas(p, N)
    assert abs((out == 0).double().mean().item() - p) < 8 * sd_zeros
