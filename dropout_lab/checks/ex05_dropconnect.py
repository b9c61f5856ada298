"""Checks for Exercise 5 (DropConnect): the DropConnect linear layer and Monte
Carlo inference.

DropConnect {Wan et al., 2013} drops WEIGHTS: y = X (W * M)^T / (1-p) + b with
M_ij = 1 with probability 1-p. In this exercise one mask M of W's shape serves
the whole minibatch, and the bias is not masked. `p` is the DROP probability.

Every check runs under its own random seed (engine.seeded), so that it
is reproducible and leaves the notebook's random state alone.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from .engine import Mistake, check, report, seeded, tensor

__all__ = ["check_dropconnect_linear", "check_dropconnect_mc"]


def _normal_cdf(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _close(a, b, tol):
    return abs(a - b) <= tol



def _identical_rows_hint(out, b, p):
    """Why the rows of the output differ for identical input rows."""
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


def _mask_from_identity(fn, W, b, p, calls):
    """With X = I, row j of the output is column j of the effective weight matrix
    (W * M)/(1-p), plus b: return the ratios W_eff / W over `calls` calls."""
    eye = torch.eye(W.shape[1], dtype=W.dtype)
    ratios = []
    for _ in range(calls):
        out = fn(eye, W, b, p)
        ratios.append(((out - b).T / W).flatten())
    return torch.cat(ratios)


@check
def check_dropconnect_linear(fn):
    """Check fn(X, W, b, p) -> X (W * M)^T / (1-p) + b, one mask M of W's shape per call.

    Fails with a hint on: an output-shaped (activation) mask or an input mask, one
    mask per example, a torch.randn mask, keep and drop confused, no 1/(1-p)
    scaling, 1/p scaling, a masked bias, W changed in place or cut from the
    gradient, NaN at p = 1, a mask made on the CPU for a tensor elsewhere.
    """
    name = "dropconnect_linear"
    with seeded(0):
        signs = torch.where(torch.rand(30, 20) < 0.5, -1.0, 1.0)
        W = torch.empty(30, 20).uniform_(0.5, 1.5) * signs
        b = torch.linspace(-1, 1, 30)
        X = torch.rand(8, 20)

        # 1. shape, and W is not changed in place
        W_copy = W.clone()
        out = tensor(fn(X, W_copy, b, 0.3))
        if not torch.equal(W_copy, W):
            return report(name, False, "your function changed W in place (e.g. W *= mask): "
                          "multiply into a new tensor, W * mask, or the layer's weights are lost")
        if out.shape != (8, 30):
            return report(name, False, f"output shape {tuple(out.shape)}, expected (batch, out) "
                          f"= (8, 30) for X (8, 20) and W (30, 20): y = X (W*M)^T/(1-p) + b")

        # 2. one weight mask per minibatch: identical input rows give identical outputs
        x = torch.rand(1, 20).expand(64, 20).contiguous()
        out = tensor(fn(x, W, b, 0.5))
        if not torch.allclose(out, out[:1].expand_as(out), atol=1e-5):
            return report(name, False, _identical_rows_hint(out, b, 0.5))
        if torch.allclose(out, x @ W.T + b, atol=1e-5):
            return report(name, False, "at p = 0.5 the output equals X @ W.T + b: no weight "
                          "was dropped; multiply W by the 0/1 mask")

        # 3. the bias is not masked: X = 0 gives b on every call
        for _ in range(5):
            out = tensor(fn(torch.zeros(4, 20), W, b, 0.5))
            if not torch.allclose(out, b.expand(4, 30), atol=1e-6):
                return report(name, False, "with X = 0 the output must be b on every call: "
                              "mask and scale the weights only, not the bias (Wan et al. also "
                              "drop biases; in this exercise b stays whole)")

        # 4. the mask itself, read off with X = I, at p = 0.2 (keep 0.8)
        p = 0.2
        ratios = _mask_from_identity(fn, W, b, p, calls=40)
        if torch.isnan(ratios).any():
            return report(name, False, "NaN in the output at p = 0.2")
        dropped = (ratios.abs() < 1e-5).double().mean().item()
        kept = ratios[ratios.abs() >= 1e-5]
        sd = math.sqrt(p * (1 - p) / ratios.numel())
        values = torch.tensor([1 / (1 - p), 1.0, 1 / p, 1 - p], dtype=kept.dtype)
        nearest = (kept[:, None] - values).abs().argmin(1) if kept.numel() else kept.long()
        on_grid = ((kept - values[nearest]).abs() < 1e-4).double().mean().item()
        clean = kept.numel() and on_grid > 0.99
        if kept.numel() and not clean:
            return report(name, False, "the effective weights are W times values other than 0 "
                          "and 1/(1-p) (e.g. "
                          f"{', '.join(f'{v:.2f}' for v in kept[:3].tolist())}): a DropConnect "
                          "mask is 0/1 (Bernoulli), then scaled by 1/(1-p); did you multiply W "
                          "by torch.randn_like(W) or torch.rand_like(W) itself?")
        if not _close(dropped, p, 8 * sd):
            if _close(dropped, 1 - p, 8 * sd):
                hint = (f"at p = {p} you dropped {dropped:.1%} of the weights, i.e. 1-p: keep "
                        "and drop are swapped. p is the DROP probability: keep a weight where "
                        "torch.rand_like(W) >= p")
            elif _close(dropped, _normal_cdf(p), 8 * sd):
                hint = (f"at p = {p} you dropped {dropped:.1%} of the weights = P(N(0,1) < p): "
                        "the mask was drawn with torch.randn (normal). Use torch.rand "
                        "(uniform on [0, 1)), so that P(rand < p) = p")
            elif dropped == 0:
                hint = "no weight was ever dropped: multiply W by the 0/1 mask"
            else:
                hint = f"at p = {p} you dropped {dropped:.1%} of the weights; expected p = {p:.0%}"
            return report(name, False, hint)
        scale = nearest.mode().values.item()  # index into values
        if scale != 0:
            hint = ["",
                    "the kept weights are not scaled: divide by (1-p) (inverted "
                    "DropConnect); without it E[output] = (1-p) X W^T + b",
                    "the kept weights are scaled by 1/p: keep and drop are swapped in "
                    "the scale; divide by (1-p), the KEEP probability",
                    "the kept weights are multiplied by (1-p): divide by (1-p) instead "
                    "(inverted DropConnect), so that E[output] = X W^T + b"][scale]
            return report(name, False, hint)

        # 5. the expectation over many draws is X W^T + b (within 5 standard errors)
        p, n = 0.5, 3000
        Xs, Ws, bs = X[:3, :10], W[:5, :10], b[:5]
        total = torch.zeros(3, 5, dtype=torch.float64)
        for _ in range(n):
            total += fn(Xs, Ws, bs, p).double()
        exact = (Xs @ Ws.T + bs).double()
        sd = torch.sqrt(p / (1 - p) * (Xs.double() ** 2) @ (Ws.double() ** 2).T / n)
        z = ((total / n - exact) / sd).abs().max().item()
        if z > 5:
            return report(name, False, f"the mean of {n} draws is {z:.1f} standard errors away "
                          "from X W^T + b: the output must be unbiased")

        # 6. gradients reach W; p = 0 gives X W^T + b, p = 1 gives b (no NaN)
        Wg = W.clone().requires_grad_()
        out = tensor(fn(X, Wg, b, 0.5))
        if not out.requires_grad:
            return report(name, False, "no gradient reaches W: don't use W.data, .detach() or "
                          "torch.no_grad() in the layer")
        out = tensor(fn(X, W, b, 0.0))
        if not torch.allclose(out, X @ W.T + b, atol=1e-5):
            return report(name, False, "p = 0 must give exactly X @ W.T + b (nothing dropped)")
        out = tensor(fn(X, W, b, 1.0))
        if torch.isnan(out).any() or not torch.allclose(out, b.expand_as(out), atol=1e-6):
            return report(name, False, "p = 1 must give b (every weight dropped), not NaN: "
                          "avoid 0/0, e.g. return b + 0 * X @ W.T when p == 1")

        # 7. dtype and device: the mask follows W (meta tensors stand in for a GPU)
        out = tensor(fn(X.double(), W.double(), b.double(), 0.5))
        if out.dtype != torch.float64:
            return report(name, False, f"float64 inputs gave {out.dtype}: make the mask with "
                          "torch.rand_like(W), in W's dtype")
        meta = [t.to("meta") for t in (X, W, b)]
        try:
            fn(*meta, 0.5)
        except Exception as error:  # only a device mix-up is the student's fault here
            if "device" in str(error):
                return report(name, False, "the mask is made on the CPU while W lives elsewhere "
                              "(this fails on a GPU): use torch.rand_like(W), which draws on "
                              f"W's device ({type(error).__name__}: {error})")
    return report(name, True, f"one 0/1 mask of W's shape per call, {dropped:.1%} of the "
                  f"weights dropped at p = 0.2, kept ones scaled by 1/(1-p); the mean of {n} "
                  "draws matches X W^T + b")


class _TwoWay(nn.Module):
    """A stand-in stochastic model. In training mode each example's class
    probabilities are A or B with probability 1/2 each, independently; in
    evaluation mode they are C. So the MC average converges to (A + B)/2."""

    A = torch.tensor([0.7, 0.2, 0.1])
    B = torch.tensor([0.1, 0.3, 0.6])
    C = torch.tensor([0.2, 0.2, 0.6])

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))  # so that a kept graph is visible

    def forward(self, X):
        n = len(X)
        if self.training:
            pick = torch.rand(n, 1, device=X.device) < 0.5
            probs = torch.where(pick, self.A, self.B)
        else:
            probs = self.C.expand(n, 3)
        return self.scale * torch.log(probs)


@check
def check_dropconnect_mc(fn):
    """Check fn(model, X, k) -> (N, classes) class probabilities averaged over k
    stochastic passes (noise on), computed without a graph, model's mode restored.

    Fails with a hint on: passes in eval mode (no noise), averaged logits (or
    softmax of averaged logits), k ignored, model left in train mode, a graph kept.
    """
    name = "mc_predict"
    model = _TwoWay().eval()
    X, k = torch.zeros(400, 5), 200
    with seeded(0):
        probs = tensor(fn(model, X, k))
    if probs.shape != (400, 3):
        return report(name, False, f"output shape {tuple(probs.shape)}, expected (N, classes) "
                      "= (400, 3): one row of class probabilities per example")
    if model.training:
        return report(name, False, "your function left the model in train mode, so every later "
                      "evaluation is noisy: remember model.training and restore it (model.eval())")
    if probs.requires_grad:
        return report(name, False, "the result carries a graph: run the k passes under "
                      "torch.no_grad(), or the memory grows with every pass")
    probs = probs.detach().float()
    if torch.allclose(probs, _TwoWay.C.expand(400, 3), atol=1e-4):
        return report(name, False, "every pass gave the eval-mode output: the noise was off. "
                      "Call model.train() before the k passes (and restore the mode after)")
    if not torch.allclose(probs.sum(1), torch.ones(400), atol=1e-4) or (probs < 0).any():
        return report(name, False, "the rows are not probabilities (they do not sum to 1): "
                      "average F.softmax(model(X), dim=1) over the passes, not the logits")
    mean = probs.mean(0)
    arithmetic = (_TwoWay.A + _TwoWay.B) / 2
    geometric = torch.softmax((torch.log(_TwoWay.A) + torch.log(_TwoWay.B)) / 2, 0)
    if not torch.allclose(mean, arithmetic, atol=0.01):
        if torch.allclose(mean, geometric, atol=0.01):
            return report(name, False, "you averaged logits (or log-probabilities) and then took "
                          "the softmax, a geometric mean: Monte Carlo averaging averages the "
                          "probabilities, softmax first")
        return report(name, False, f"mean prediction {mean.numpy().round(3)} should be the "
                      f"average of the passes' probabilities, {arithmetic.numpy().round(3)}")
    # each example's average of k passes has std 0.3/sqrt(k) in its first class
    passes = (0.3 / probs[:, 0].std().item()) ** 2
    if not k / 2 < passes < 2 * k:
        return report(name, False, f"the spread across examples fits about {passes:.0f} "
                      f"passes, not k = {k}: average over exactly k stochastic passes")
    return report(name, True, f"probabilities averaged over k = {k} noisy passes "
                  f"(spread fits {passes:.0f}), no graph kept, eval mode restored")


# ---------------------------------------------------------------------------
# The references and the known mistakes (found by the checks' properties;
# tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

def dropconnect_linear(X, W, b, p):
    """The reference: one 0/1 mask of W's shape for the batch, scaled by 1/(1-p)."""
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


LINEAR_MISTAKES = [
    Mistake(activation_mask, "OUTPUT's shape"),
    Mistake(activation_mask_before_bias, "OUTPUT's shape"),
    Mistake(input_mask, "identical input rows gave different output rows"),
    Mistake(per_example_mask, "one mask per example"),
    Mistake(no_scaling, "not scaled"),
    Mistake(times_keep, "multiplied by (1-p)"),
    Mistake(randn_threshold, "torch.randn"),
    Mistake(randn_values, "values other than 0"),
    Mistake(keep_drop_swapped, "keep and drop are swapped"),
    Mistake(scaled_by_one_over_p, "scaled by 1/p"),
    Mistake(bias_masked, "not the bias"),
    Mistake(in_place, "in place"),
    Mistake(through_data, "no gradient reaches W"),
    Mistake(nan_at_one, "p = 1 must give b"),
    Mistake(cpu_mask, "on the CPU"),
    Mistake(todo, "not implemented yet"),
]


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
    Mistake(lambda m, X, k: mc_predict(m, X, 1), "passes, not k"),
]

MISTAKES = {"dropconnect_linear": LINEAR_MISTAKES, "dropconnect_mc": MC_MISTAKES}
REFERENCES = {"dropconnect_linear": dropconnect_linear, "dropconnect_mc": mc_predict}
