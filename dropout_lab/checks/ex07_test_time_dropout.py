"""Exercise 7 (test-time dropout): its checks, references and known mistakes.

A model with a BatchNorm layer (which must stay in eval mode) and one dropout
layer of four units, whose 16 masks can be enumerated for the exact ensemble
average.

Functions are checked on small inputs built so that each classic mistake gives
a different answer from the right one. `p` is always the DROP probability;
Srivastava et al. (2014) write the keep probability q = 1 - p. Checks that draw
random numbers run under their own seed (engine.seeded).
"""
import itertools
import math

import numpy as np
import torch
from torch import nn

from .engine import Mistake, check, known_mistake, report, seeded

__all__ = ["check_mc_predict", "check_entropy", "check_selective_accuracy"]


@torch.no_grad()
def mc_predict_reference(model, X, k):
    """Mean softmax over k passes with only the nn.Dropout modules in train mode;
    every module gets its own mode back afterwards."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    try:
        total = 0
        for _ in range(k):
            total = total + torch.softmax(model(X), dim=-1)
    finally:
        for module, mode in modes.items():
            module.train(mode)
    return total / k


def entropy_reference(probs):
    """Entropy in nats of each row of probs (N, C), with 0 log 0 = 0."""
    return -torch.xlogy(probs, probs).sum(dim=-1)


def selective_accuracy_reference(uncertainty, correct, coverage):
    """Accuracy on the fraction `coverage` of the images with the lowest uncertainty."""
    keep = max(1, round(coverage * len(uncertainty)))
    order = torch.argsort(uncertainty, stable=True)[:keep]
    return correct[order].float().mean().item()


# ---------------------------------------------------------------------------
# Exercise 7: Monte Carlo prediction
# ---------------------------------------------------------------------------

def _mc_model():
    """A small model whose dropout layer sits inside a sub-module, after a
    BatchNorm layer with running statistics that differ from any batch's, and
    before one more nonlinear layer (so that averaging logits is neither averaging
    probabilities nor eval mode). Returned in eval mode, with its input."""
    with seeded(3):
        block = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.5))
        model = nn.Sequential(block, nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5))
        with torch.no_grad():
            model[1].weight.mul_(2)
            model[3].weight.mul_(6)
            block[1].running_mean.copy_(torch.tensor([0.2, -0.1, 0.3, 0.0]))
            block[1].running_var.copy_(torch.tensor([1.5, 0.8, 2.0, 1.2]))
        X = torch.randn(48, 3)
    return model.eval(), X


@torch.no_grad()
def _exact_ensemble(model, X):
    """Over all 16 masks of the dropout layer: (mean of the softmax, softmax of the
    mean logits, eval-mode softmax)."""
    block = model[0]
    p = block[3].p
    H = block[:3](X)
    probs, logits = 0, 0
    for mask in itertools.product([0.0, 1.0], repeat=H.shape[1]):
        m = torch.tensor(mask)
        weight = (1 - p) ** m.sum().item() * p ** (len(m) - m.sum().item())
        z = model[1:](H * m / (1 - p))
        probs = probs + weight * torch.softmax(z, dim=-1)
        logits = logits + weight * z
    return probs, torch.softmax(logits, dim=-1), torch.softmax(model(X), dim=-1)


def _bn_state(model):
    bn = model[0][1]
    return bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked)


def _bn_changed(model, before):
    after = _bn_state(model)
    return not (torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
                and before[2] == after[2])


@check
def check_mc_predict(fn):
    """fn(model, X, k) -> (N, C) mean of the softmax outputs of k passes, with the
    nn.Dropout modules in train mode, everything else in eval mode, and the model's
    mode restored afterwards."""
    name = "mc_predict"
    model, X = _mc_model()
    N, C = len(X), 5
    k = 400
    bn_before = _bn_state(model)
    with seeded(0):
        out = fn(model, X, k)
    if not isinstance(out, torch.Tensor):
        return report(name, False, f"return a torch.Tensor of probabilities, shape (N, C), "
                      f"got {type(out).__name__}")
    out = out.detach().to(torch.float32)
    if _bn_changed(model, bn_before):
        return report(name, False, "BatchNorm ran in train mode during your passes (its "
                      "running statistics changed): call model.eval() first and switch ONLY "
                      "the nn.Dropout modules to train mode")
    if any(module.training for module in model.modules()):
        return report(name, False, "the model is still in train mode after your function: "
                      "whoever uses it next gets random predictions. Put every module back "
                      "in the mode it had (e.g. remember model.training, then "
                      "model.train(was_training))")
    if out.shape == (k, N, C):
        return report(name, False, f"you returned every pass, shape {tuple(out.shape)}: "
                      "average over the passes (dim 0) to get (N, C)")
    if out.shape != (N, C):
        return report(name, False, f"shape {tuple(out.shape)}, expected (N, C) = ({N}, {C}): "
                      "one row of class probabilities per input")
    if not torch.isfinite(out).all():
        return report(name, False, "the output holds NaN or inf")
    probs, from_logits, evaluated = _exact_ensemble(model, X)
    if not torch.allclose(out.sum(-1), torch.ones(N), atol=1e-4):
        if torch.allclose(out.exp().sum(-1), torch.ones(N), atol=1e-3):
            return report(name, False, "these are log-probabilities: average the "
                          "probabilities, softmax(model(X)), not their logarithms")
        return report(name, False, "the rows do not sum to 1: these are not probabilities. "
                      "Apply softmax to each pass's logits, then average the probabilities")
    error = (out - probs).abs().mean().item()
    if (out - evaluated).abs().max().item() < 1e-5:
        return report(name, False, "the output equals eval mode (weight scaling): no dropout "
                      "was active during the passes. After model.eval(), switch every "
                      "nn.Dropout in model.modules() to train mode (they may sit inside "
                      "sub-modules, where `for layer in model` does not look)")
    if error > 0.015 and (out - from_logits).abs().mean().item() < error:
        return report(name, False, "you averaged the logits (or log-probabilities) and took "
                      "the softmax once: that is a different ensemble, a normalized geometric "
                      "mean of the thinned networks. The Monte Carlo estimate of the "
                      "ensemble averages the PROBABILITIES: mean over passes of softmax")
    if error > 0.015:
        with seeded(0):
            single = fn(model, X, 1)
        if isinstance(single, torch.Tensor) and torch.allclose(
                single.detach().to(torch.float32), out, atol=1e-6):
            return report(name, False, "your k passes are identical (k = 400 gives exactly "
                          "the output of k = 1): draw a new dropout mask in every pass. Do "
                          "not reseed inside the loop, and do not repeat one pass k times")
        return report(name, False, f"with k = {k} passes the average is {error:.3f} away from "
                      "the exact ensemble average (per probability): average "
                      "softmax(model(X)) over k passes with only the dropout modules in "
                      "train mode")
    # The same again on a model that starts in train mode: its mode comes back.
    model, X = _mc_model()
    model.train()
    bn_before = _bn_state(model)
    with seeded(1):
        fn(model, X, 3)
    if _bn_changed(model, bn_before):
        return report(name, False, "on a model that was in train mode, BatchNorm ran in "
                      "train mode during your passes: call model.eval() first, then switch "
                      "only the nn.Dropout modules to train mode")
    if not all(module.training for module in model.modules()):
        return report(name, False, "a model that came in train mode left in eval mode: "
                      "restore the mode it had (remember model.training before, call "
                      "model.train(was_training) after), do not always call model.eval()")
    return report(name, True, f"the mean of the probabilities, {error:.4f} from the exact "
                  "ensemble at k = 400; BatchNorm stayed in eval mode; the mode is restored")


# ---------------------------------------------------------------------------
# Exercise 7: entropy and selective accuracy
# ---------------------------------------------------------------------------

def _entropy_inputs():
    rows = [[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0], [0.7, 0.1, 0.1, 0.1]]
    generator = torch.Generator().manual_seed(5)
    rows = torch.tensor(rows)
    random = torch.softmax(3 * torch.randn(7, 4, generator=generator), dim=1)
    return torch.cat([rows, random])


@check
def check_entropy(fn):
    """fn(probs) -> entropy in nats of each row, shape (N,), 0 for one-hot rows."""
    name = "entropy"
    probs = _entropy_inputs()
    want = entropy_reference(probs.double())
    out = fn(probs.clone())
    if not isinstance(out, torch.Tensor):
        try:
            out = torch.as_tensor(np.asarray(out, dtype=float))
        except (TypeError, ValueError):
            return report(name, False, f"return a tensor, one entropy per row; got "
                          f"{type(out).__name__}")
    out = out.detach().double()
    N, C = probs.shape
    if out.shape == (C,):
        return report(name, False, "one value per CLASS: you summed over the images. Sum "
                      "over the classes, dim=-1, to get one entropy per image")
    if out.shape == (N, 1):
        return report(name, False, "shape (N, 1): drop keepdim=True (or squeeze), so that "
                      "the entropy can index and plot like the labels, shape (N,)")
    if out.shape != (N,):
        return report(name, False, f"shape {tuple(out.shape)}, expected ({N},): one entropy "
                      "per row, summed over the classes")
    if not torch.isfinite(out).all():
        return report(name, False, "NaN for rows with zero probabilities: 0·log 0 is NaN in "
                      "floating point but 0 in the entropy. Use torch.xlogy(p, p), or "
                      "p * log(p.clamp_min(1e-12))")
    if torch.allclose(out, want, atol=1e-5):
        return report(name, True, "0 for one-hot rows, log 4 for the uniform row, no NaN")
    big = want > 0.1
    ratio = (out[big] / want[big]).median().item()
    for factor, hint in [(-1.0, "the sign is wrong: H = -sum p log p is never negative"),
                         (1 / math.log(2), "this is in bits (log2): use the natural "
                          "logarithm, nats, as the loss does"),
                         (1 / math.log(10), "this uses log10: use the natural logarithm"),
                         (1 / C, "this is the MEAN over the classes: the entropy is the sum")]:
        if abs(ratio - factor) < 1e-3 * abs(factor) and torch.allclose(
                out[big], factor * want[big], rtol=1e-3):
            return report(name, False, hint)
    if torch.allclose(out, 1 - probs.double().max(1).values, atol=1e-5):
        return report(name, False, "that is 1 - max probability, a different uncertainty "
                      "score: the entropy is -sum_c p_c log p_c")
    if not torch.allclose(out[~big], want[~big], atol=1e-5) and \
            torch.allclose(out[big], want[big], rtol=1e-3):
        return report(name, False, "wrong for the (nearly) one-hot rows: the entropy of a "
                      "certain prediction is 0; a large epsilon inside the log spoils it")
    return report(name, False, f"wrong values, e.g. {out[1].item():.4f} for the uniform row "
                  f"over 4 classes (want log 4 = {math.log(4):.4f}): -sum p log p over the "
                  "classes")


def _selective_inputs():
    generator = torch.Generator().manual_seed(11)
    N = 1000
    uncertainty = torch.rand(N, generator=generator)
    correct = torch.rand(N, generator=generator) > 0.9 * uncertainty ** 2
    return uncertainty, correct


@check
def check_selective_accuracy(fn):
    """fn(uncertainty, correct, coverage) -> accuracy on the `coverage` fraction of
    the images with the LOWEST uncertainty (a float between 0 and 1)."""
    name = "selective accuracy"
    uncertainty, correct = _selective_inputs()
    N = len(uncertainty)
    for coverage in (0.5, 1.0, 0.1, 0.8):
        out = fn(uncertainty.clone(), correct.clone(), coverage)
        try:
            got = float(out)
        except (TypeError, ValueError):
            return report(name, False, f"return one number (the accuracy), got "
                          f"{type(out).__name__}")
        order = torch.argsort(uncertainty)
        wants = {correct[order[:keep]].float().mean().item()
                 for keep in {math.floor(coverage * N), math.ceil(coverage * N)} if keep}
        if any(abs(got - w) < 1e-6 for w in wants):
            continue
        if got > 1:
            return report(name, False, f"{got:g} is a count: return the fraction of the kept "
                          "images that are correct")
        hint = known_mistake(got, SELECTIVE_MISTAKES, lambda wrong: wrong(
            uncertainty, correct, coverage), rtol=1e-5)
        want = selective_accuracy_reference(uncertainty, correct, coverage)
        return report(name, False, f"at coverage {coverage}: " + (hint or (
            f"got {got:.4f}, expected {want:.4f}: keep the round(coverage*N) images with "
            "the lowest uncertainty and return the fraction of them that is correct")))
    return report(name, True, "accuracy on the least uncertain images, for coverages 0.1 "
                  "to 1")


# ---------------------------------------------------------------------------
# The known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

def _todo(*args):
    raise NotImplementedError("TODO")


def _dropout_on(model, everywhere=True):
    """Eval mode, then the nn.Dropout modules (everywhere, or top-level only) in train."""
    model.eval()
    for module in model.modules() if everywhere else model:
        if isinstance(module, nn.Dropout):
            module.train()


@torch.no_grad()
def _mc(model, X, k, switch=_dropout_on, combine=None, restore=True, reseed=False,
        end_eval=False):
    """The notebook's answer, or with one thing done wrong: the known mistakes."""
    was = model.training
    switch(model)
    logits = []
    for _ in range(k):
        if reseed:
            torch.manual_seed(0)
        logits.append(model(X))
    logits = torch.stack(logits)
    out = torch.softmax(logits, -1).mean(0) if combine is None else combine(logits)
    if restore:
        model.train(was)
    if end_eval:
        model.eval()
    return out


MC_MISTAKES = [Mistake(lambda m, X, k, kw=kw: _mc(m, X, k, **kw), hint) for kw, hint in [
    ({"combine": lambda z: torch.softmax(z.mean(0), -1)}, "averaged the logits"),
    ({"restore": False}, "still in train mode"),
    ({"switch": lambda m: m.train()}, "BatchNorm ran in train mode"),
    ({"switch": lambda m: m.eval()}, "equals eval mode"),
    ({"switch": lambda m: _dropout_on(m, everywhere=False)}, "sub-modules"),
    ({"reseed": True}, "passes are identical"),
    ({"restore": False, "end_eval": True}, "restore the mode it had"),
    ({"combine": lambda z: z.mean(0)}, "do not sum to 1"),
    ({"combine": lambda z: torch.softmax(z, -1)}, "average over the passes")]] + [
    Mistake(_todo, "not implemented yet")]


def _log(P):
    return torch.log(P.clamp_min(1e-12))


ENTROPY_MISTAKES = [
    Mistake(lambda P: -(P * torch.log(P)).sum(1), "NaN"),
    Mistake(lambda P: (P * _log(P)).sum(1), "sign"),
    Mistake(lambda P: -(P * torch.log2(P.clamp_min(1e-12))).sum(1), "bits"),
    Mistake(lambda P: -(P * _log(P)).mean(1), "MEAN"),
    Mistake(lambda P: -(P * _log(P)).sum(0), "summed over the images"),
    Mistake(lambda P: -torch.xlogy(P, P).sum(1, keepdim=True), "keepdim"),
    Mistake(lambda P: 1 - P.max(1).values, "1 - max probability"),
]


def _kept(uncertainty, correct, coverage, descending=False):
    order = torch.argsort(uncertainty, descending=descending)
    return correct[order[:round(coverage * len(uncertainty))]].float()


SELECTIVE_MISTAKES = [
    Mistake(lambda u, c, cov: _kept(u, c, cov, descending=True).mean().item(), "you kept "
            "the MOST uncertain images: sort by uncertainty in increasing order and keep "
            "the first ones (abstain on the most uncertain)"),
    Mistake(lambda u, c, cov: c.float().mean().item(), "you returned the accuracy on all "
            "images: keep only that fraction, the least uncertain"),
    Mistake(lambda u, c, cov: _kept(u, c, cov).sum().item() / len(c), "you divided by the "
            "number of ALL images: the accuracy is over the kept images only"),
    Mistake(lambda u, c, cov: _kept(u, c, cov).sum().item(), "is a count"),
]

MISTAKES = {"mc_predict": MC_MISTAKES, "entropy": ENTROPY_MISTAKES,
            "selective_accuracy": SELECTIVE_MISTAKES}
REFERENCES = {"mc_predict": mc_predict_reference, "entropy": entropy_reference,
              "selective_accuracy": selective_accuracy_reference}
PASSES = {"mc_predict": [(_mc,)]}
