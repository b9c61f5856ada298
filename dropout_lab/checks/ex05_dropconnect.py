"""Exercise 5 (DropConnect): its checks, references and known mistakes.

DropConnect {Wan et al., 2013} drops WEIGHTS: y = X (W * M)^T / (1-p) + b with
M_ij = 1 with probability 1-p. In this exercise one mask M of W's shape serves
the whole minibatch, and the bias is not masked. `p` is the DROP probability.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from .engine import Fail, Mistake, check, report, seeded, tensor

__all__ = ["check_dropconnect_linear", "check_dropconnect_mc"]


def _identical_rows_hint(out, b, p):
    """Why identical input rows gave different output rows."""
    bias_only = torch.isclose(out, b.expand_as(out), rtol=0, atol=1e-6)
    zeros = ((out == 0) | bias_only).double().mean().item()
    if zeros > p / 2:
        return (f"{zeros:.0%} of the outputs are exactly 0 (or b): the mask has the OUTPUT's "
                "shape, i.e. you dropped activations (that is dropout after the layer). "
                "DropConnect drops entries of W: draw one mask of W's shape, "
                "torch.rand_like(W) >= p")
    return ("identical input rows gave different output rows, so the noise is not one "
            "weight mask shared by the minibatch. If you masked X, that is dropout on the "
            "layer's input; if you drew one mask per example (B, out, in), that is the "
            "per-example variant of part (b). Here draw ONE mask of W's shape per call")


def _dropped_fraction(fn, W, b, p, calls=40):
    """The fraction of W's entries dropped over `calls` calls at drop probability p;
    fails unless the kept ones are scaled by 1/(1-p). With X = I, row j of the output
    is column j of the effective weights plus b, so the mask can be read off."""
    eye = torch.eye(W.shape[1], dtype=W.dtype)
    ratios = torch.cat([((fn(eye, W, b, p) - b).T / W).flatten() for _ in range(calls)])
    if torch.isnan(ratios).any():
        raise Fail(f"NaN in the output at p = {p}")
    kept = ratios[ratios.abs() >= 1e-5]
    scales = [(1 / (1 - p), None),  # the right scale of the kept weights, then mistakes
              (1.0, "the kept weights are not scaled: divide by (1-p) (inverted "
                    "DropConnect); without it E[output] = (1-p) X W^T + b"),
              (1 / p, "the kept weights are scaled by 1/p: keep and drop are swapped in "
                      "the scale; divide by (1-p), the KEEP probability"),
              (1 - p, "the kept weights are multiplied by (1-p): divide by (1-p) instead "
                      "(inverted DropConnect), so that E[output] = X W^T + b")]
    grid = torch.tensor([scale for scale, _ in scales], dtype=kept.dtype)
    nearest = (kept[:, None] - grid).abs().argmin(1)
    if len(kept) and ((kept - grid[nearest]).abs() >= 1e-4).double().mean() > 0.01:
        raise Fail("the effective weights are W times values other than 0 and 1/(1-p) (e.g. "
                   f"{', '.join(f'{v:.2f}' for v in kept[:3].tolist())}): a DropConnect "
                   "mask is 0/1 (Bernoulli), then scaled by 1/(1-p); did you multiply W "
                   "by torch.randn_like(W) or torch.rand_like(W) itself?")
    dropped = 1 - len(kept) / len(ratios)
    sd = math.sqrt(p * (1 - p) / len(ratios))
    if abs(dropped - p) > 8 * sd:
        said = f"at p = {p} you dropped {dropped:.1%} of the weights"
        normal_cdf = 0.5 * (1 + math.erf(p / math.sqrt(2)))
        if abs(dropped - (1 - p)) <= 8 * sd:
            raise Fail(f"{said}, i.e. 1-p: keep and drop are swapped. p is the DROP "
                       "probability: keep a weight where torch.rand_like(W) >= p")
        if abs(dropped - normal_cdf) <= 8 * sd:
            raise Fail(f"{said} = P(N(0,1) < p): the mask was drawn with torch.randn "
                       "(normal). Use torch.rand (uniform on [0, 1)), so that P(rand < p) = p")
        raise Fail(f"{said}; expected p = {p:.0%}")
    _, hint = scales[nearest.mode().values.item()]
    if hint:
        raise Fail(hint)
    return dropped


@check
def check_dropconnect_linear(fn):
    """fn(X, W, b, p) -> X (W * M)^T / (1-p) + b, one 0/1 mask M of W's shape per call."""
    with seeded(0):
        signs = torch.where(torch.rand(30, 20) < 0.5, -1.0, 1.0)
        W = torch.empty(30, 20).uniform_(0.5, 1.5) * signs
        b = torch.linspace(-1, 1, 30)
        X = torch.rand(8, 20)

        # shape, and W is not changed in place
        W_copy = W.clone()
        out = tensor(fn(X, W_copy, b, 0.3))
        if not torch.equal(W_copy, W):
            raise Fail("your function changed W in place (e.g. W *= mask): multiply into a "
                       "new tensor, W * mask, or the layer's weights are lost")
        if out.shape != (8, 30):
            raise Fail(f"output shape {tuple(out.shape)}, expected (batch, out) = (8, 30) "
                       "for X (8, 20) and W (30, 20): y = X (W*M)^T/(1-p) + b")

        # one weight mask per minibatch: identical input rows give identical output rows
        x = torch.rand(1, 20).expand(64, 20).contiguous()
        out = tensor(fn(x, W, b, 0.5))
        if not torch.allclose(out, out[:1].expand_as(out), atol=1e-5):
            raise Fail(_identical_rows_hint(out, b, 0.5))

        # the bias is not masked: X = 0 gives b on every call
        for _ in range(5):
            out = tensor(fn(torch.zeros(4, 20), W, b, 0.5))
            if not torch.allclose(out, b.expand(4, 30), atol=1e-6):
                raise Fail("with X = 0 the output must be b on every call: mask and scale the "
                           "weights only, not the bias (Wan et al. also drop biases; in this "
                           "exercise b stays whole)")

        dropped = _dropped_fraction(fn, W, b, p=0.2)

        # the mean of many draws is X W^T + b (within 5 standard errors)
        p, n = 0.5, 3000
        Xs, Ws, bs = X[:3, :10], W[:5, :10], b[:5]
        total = torch.zeros(3, 5, dtype=torch.float64)
        for _ in range(n):
            total += fn(Xs, Ws, bs, p).double()
        exact = (Xs @ Ws.T + bs).double()
        sd = torch.sqrt(p / (1 - p) * (Xs.double() ** 2) @ (Ws.double() ** 2).T / n)
        z = ((total / n - exact) / sd).abs().max().item()
        if z > 5:
            raise Fail(f"the mean of {n} draws is {z:.1f} standard errors away from "
                       "X W^T + b: the output must be unbiased")

        # gradients reach W; p = 0 gives X W^T + b, p = 1 gives b (no NaN)
        if not tensor(fn(X, W.clone().requires_grad_(), b, 0.5)).requires_grad:
            raise Fail("no gradient reaches W: don't use W.data, .detach() or "
                       "torch.no_grad() in the layer")
        if not torch.allclose(tensor(fn(X, W, b, 0.0)), X @ W.T + b, atol=1e-5):
            raise Fail("p = 0 must give exactly X @ W.T + b (nothing dropped)")
        out = tensor(fn(X, W, b, 1.0))
        if torch.isnan(out).any() or not torch.allclose(out, b.expand_as(out), atol=1e-6):
            raise Fail("p = 1 must give b (every weight dropped), not NaN: avoid 0/0, e.g. "
                       "return b + 0 * X @ W.T when p == 1")

        # dtype and device: the mask follows W (meta tensors stand in for a GPU)
        out = tensor(fn(X.double(), W.double(), b.double(), 0.5))
        if out.dtype != torch.float64:
            raise Fail(f"float64 inputs gave {out.dtype}: make the mask with "
                       "torch.rand_like(W), in W's dtype")
        try:
            fn(*[t.to("meta") for t in (X, W, b)], 0.5)
        except Exception as error:  # only a device mix-up is the student's fault here
            if "device" in str(error):
                raise Fail("the mask is made on the CPU while W lives elsewhere (this fails "
                           "on a GPU): use torch.rand_like(W), which draws on W's device "
                           f"({type(error).__name__}: {error})") from None
    return report("dropconnect_linear", True, f"one 0/1 mask of W's shape per call, "
                  f"{dropped:.1%} of the weights dropped at p = 0.2, kept ones scaled by "
                  f"1/(1-p); the mean of {n} draws matches X W^T + b")


class _TwoWay(nn.Module):
    """A stand-in stochastic model: in training mode each example's class probabilities
    are A or B, 1/2 each; in eval mode C. So the MC average tends to (A + B)/2."""

    A = torch.tensor([0.7, 0.2, 0.1])
    B = torch.tensor([0.1, 0.3, 0.6])
    C = torch.tensor([0.2, 0.2, 0.6])

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))  # so that a kept graph is visible

    def forward(self, X):
        if self.training:
            pick = torch.rand(len(X), 1, device=X.device) < 0.5
            probs = torch.where(pick, self.A, self.B)
        else:
            probs = self.C.expand(len(X), 3)
        return self.scale * torch.log(probs)


@check
def check_dropconnect_mc(fn):
    """fn(model, X, k) -> (N, classes) class probabilities averaged over k passes with
    the noise on, computed without a graph, the model's mode restored."""
    model = _TwoWay().eval()
    X, k = torch.zeros(400, 5), 200
    with seeded(0):
        probs = tensor(fn(model, X, k))
    if probs.shape != (400, 3):
        raise Fail(f"output shape {tuple(probs.shape)}, expected (N, classes) = (400, 3): "
                   "one row of class probabilities per example")
    if model.training:
        raise Fail("your function left the model in train mode, so every later evaluation "
                   "is noisy: remember model.training and restore it (model.eval())")
    if probs.requires_grad:
        raise Fail("the result carries a graph: run the k passes under torch.no_grad(), or "
                   "the memory grows with every pass")
    probs = probs.detach().float()
    if torch.allclose(probs, _TwoWay.C.expand(400, 3), atol=1e-4):
        raise Fail("every pass gave the eval-mode output: the noise was off. Call "
                   "model.train() before the k passes (and restore the mode after)")
    if not torch.allclose(probs.sum(1), torch.ones(400), atol=1e-4) or (probs < 0).any():
        raise Fail("the rows are not probabilities (they do not sum to 1): average "
                   "F.softmax(model(X), dim=1) over the passes, not the logits")
    mean = probs.mean(0)
    arithmetic = (_TwoWay.A + _TwoWay.B) / 2
    geometric = torch.softmax((_TwoWay.A.log() + _TwoWay.B.log()) / 2, 0)
    if torch.allclose(mean, geometric, atol=0.01):
        raise Fail("you averaged logits (or log-probabilities) and then took the softmax, a "
                   "geometric mean: Monte Carlo averaging averages the probabilities, "
                   "softmax first")
    if not torch.allclose(mean, arithmetic, atol=0.01):
        raise Fail(f"mean prediction {mean.numpy().round(3)} should be the average of the "
                   f"passes' probabilities, {arithmetic.numpy().round(3)}")
    # each example's average of k passes has std 0.3/sqrt(k) in its first class
    passes = (0.3 / probs[:, 0].std().item()) ** 2
    if not k / 2 < passes < 2 * k:
        raise Fail(f"the spread across examples fits about {passes:.0f} passes, not "
                   f"k = {k}: average over exactly k stochastic passes")
    return report("dropconnect_mc", True, f"probabilities averaged over k = {k} noisy passes "
                  f"(spread fits {passes:.0f}), no graph kept, eval mode restored")


# ---------------------------------------------------------------------------
# The references and the known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

def dropconnect_linear(X, W, b, p):
    """The reference: one 0/1 mask of W's shape for the batch, scaled by 1/(1-p)."""
    if p == 1:
        return F.linear(X, W * 0, b)
    mask = (torch.rand_like(W) >= p).to(W.dtype)
    return F.linear(X, W * mask / (1 - p), b)


def _keep(t, p):
    """A 0/1 mask of t's shape that keeps each entry with probability 1-p."""
    return torch.rand_like(t) >= p


def _drop(t, p):
    """Inverted dropout of the entries of t (not what DropConnect does to X or X W^T)."""
    return t * _keep(t, p) / (1 - p)


def _in_place(X, W, b, p):
    with torch.no_grad():
        W *= _keep(W, p) / (1 - p) if p < 1 else 0
    return F.linear(X, W, b)


def _todo(X, W, b, p):
    raise NotImplementedError("TODO: draw a 0/1 mask of W's shape")


LINEAR_MISTAKES = [Mistake(wrong, hint) for wrong, hint in [
    (lambda X, W, b, p: _drop(F.linear(X, W, b), p), "OUTPUT's shape"),
    (lambda X, W, b, p: _drop(X @ W.T, p) + b, "OUTPUT's shape"),
    (lambda X, W, b, p: F.linear(_drop(X, p), W, b),
     "identical input rows gave different output rows"),
    (lambda X, W, b, p: torch.einsum(
        "bi,boi->bo", X, W * (torch.rand(len(X), *W.shape) >= p)) / (1 - p) + b,
     "one mask per example"),
    (lambda X, W, b, p: F.linear(X, W * _keep(W, p), b), "not scaled"),
    (lambda X, W, b, p: F.linear(X, W * _keep(W, p) * (1 - p), b), "multiplied by (1-p)"),
    (lambda X, W, b, p: F.linear(X, W * (torch.randn_like(W) >= p) / (1 - p), b),
     "torch.randn"),
    (lambda X, W, b, p: F.linear(X, W * torch.randn_like(W), b), "values other than 0"),
    (lambda X, W, b, p: F.linear(X, W * ~_keep(W, p) / (1 - p), b),
     "keep and drop are swapped"),
    (lambda X, W, b, p: F.linear(X, W * _keep(W, p) / p if p else W, b), "scaled by 1/p"),
    (lambda X, W, b, p: F.linear(X, _drop(W, p), b * _keep(b, p)), "not the bias"),
    (_in_place, "in place"),
    (lambda X, W, b, p: F.linear(X, _drop(W.data, p), b), "no gradient reaches W"),
    (lambda X, W, b, p: F.linear(X, _drop(W, p), b), "p = 1 must give b"),
    (lambda X, W, b, p: F.linear(X, W * (torch.rand(W.shape) >= p) / (1 - p), b)
     if p < 1 else F.linear(X, W * 0, b), "on the CPU"),
    (_todo, "not implemented yet"),
]]


def mc_predict(model, X, k, noise=True, softmax_first=True, restore=True, no_grad=True):
    """The reference: the mean of k softmax outputs with the noise on, mode restored.
    The keywords make the known mistakes (noise off, logits averaged, ...)."""
    was_training = model.training
    model.train(noise)
    with torch.set_grad_enabled(not no_grad):
        out = sum(F.softmax(model(X), dim=1) if softmax_first else model(X)
                  for _ in range(k)) / k
    model.train(was_training if restore else noise)
    return out


MC_MISTAKES = [Mistake(lambda m, X, k, kw=kw: mc_predict(m, X, k, **kw), hint)
               for kw, hint in [
    ({"noise": False}, "the noise was off"),
    ({"softmax_first": False}, "not probabilities"),
    ({"restore": False}, "left the model in train mode"),
    ({"no_grad": False}, "torch.no_grad()")]] + [
    Mistake(lambda m, X, k: F.softmax(mc_predict(m, X, k, softmax_first=False), dim=1),
            "geometric mean"),
    Mistake(lambda m, X, k: mc_predict(m, X, k=1), "passes, not k"),
]

MISTAKES = {"dropconnect_linear": LINEAR_MISTAKES, "dropconnect_mc": MC_MISTAKES}
REFERENCES = {"dropconnect_linear": dropconnect_linear, "dropconnect_mc": mc_predict}
