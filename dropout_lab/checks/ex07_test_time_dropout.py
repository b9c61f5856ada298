"""Exercise 7 (test-time dropout): its checks, references and known mistakes.

The model of check_mc_predict has a BatchNorm layer (which must stay in eval mode)
and one dropout layer of four units, whose 16 masks give the exact ensemble
average. `p` is always the DROP probability; Srivastava et al. (2014) write the
keep probability q = 1 - p. Random draws run under their own seed (engine.seeded).
"""
import itertools
import math

import numpy as np
import torch
from torch import nn

from .engine import Fail, Mistake, check, known_mistake, report, seeded, tensor

__all__ = ["check_mc_predict", "check_entropy", "check_selective_accuracy"]


def _dropout_on(model, everywhere=True):
    """Eval mode, then the nn.Dropout modules (everywhere, or top-level only) in train."""
    model.eval()
    for module in model.modules() if everywhere else model:
        if isinstance(module, nn.Dropout):
            module.train()


@torch.no_grad()
def mc_predict_reference(model, X, k):
    """Mean softmax over k passes with only the nn.Dropout modules in train mode;
    every module gets its own mode back afterwards."""
    modes = {module: module.training for module in model.modules()}
    _dropout_on(model)
    try:
        return sum(torch.softmax(model(X), dim=-1) for _ in range(k)) / k
    finally:
        for module, mode in modes.items():
            module.train(mode)


def entropy_reference(probs):
    """Entropy in nats of each row of probs (N, C), with 0 log 0 = 0."""
    return -torch.xlogy(probs, probs).sum(dim=-1)


def selective_accuracy_reference(uncertainty, correct, coverage):
    """Accuracy on the fraction `coverage` of the images with the lowest uncertainty."""
    keep = max(1, round(coverage * len(uncertainty)))
    order = torch.argsort(uncertainty, stable=True)[:keep]
    return correct[order].float().mean().item()


def _mc_model():
    """A small model whose dropout layer sits inside a sub-module, after a BatchNorm
    layer with running statistics unlike any batch's, and before one more nonlinear
    layer (so that averaging logits is neither averaging probabilities nor eval
    mode). Returned in eval mode, with its input."""
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
    mean logits)."""
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
    return probs, torch.softmax(logits, dim=-1)


def _mc_run(fn, k, seed, train=False):
    """fn(model, X, k) on a fresh _mc_model (in train mode if train), under seed; fails
    if BatchNorm ran in train mode (its count of batches grew) or the mode changed."""
    model, X = _mc_model()
    model.train(train)
    batches = int(model[0][1].num_batches_tracked)
    with seeded(seed):
        out = fn(model, X, k)
    if int(model[0][1].num_batches_tracked) != batches:
        raise Fail("BatchNorm ran in train mode during your passes (its running statistics "
                   "changed): call model.eval() first and switch ONLY the nn.Dropout "
                   "modules to train mode")
    if any(module.training != train for module in model.modules()):
        now = "in eval mode" if train else "still in train mode"
        raise Fail(f"the model came in {'train' if train else 'eval'} mode and is {now} "
                   "after your function: restore the mode it had (remember "
                   "model.training, then call model.train(was_training))")
    return out


EVAL_MODE = ("the output equals eval mode (weight scaling): no dropout was active during "
             "the passes. After model.eval(), switch every nn.Dropout in model.modules() to "
             "train mode (they may sit inside sub-modules, where `for layer in model` does "
             "not look)")
NOT_PROBABILITIES = ("the rows do not sum to 1: these are not probabilities. Apply softmax "
                     "to each pass's logits, then average the probabilities")
AVERAGED_LOGITS = ("you averaged the logits (or log-probabilities) and took the softmax once: "
                   "that is a different ensemble, a normalized geometric mean of the thinned "
                   "networks. The Monte Carlo estimate of the ensemble averages the "
                   "PROBABILITIES: mean over passes of softmax")
SAME_PASSES = ("your k passes are identical (k = 400 gives exactly the output of k = 1): "
               "draw a new dropout mask in every pass. Do not reseed inside the loop, and do "
               "not repeat one pass k times")


@check
def check_mc_predict(fn):
    """fn(model, X, k) -> (N, C) mean of the softmax outputs of k passes, with the
    nn.Dropout modules in train mode, everything else in eval mode, and the model's
    mode restored afterwards."""
    k = 400
    out = tensor(_mc_run(fn, k, seed=0)).detach().float()
    model, X = _mc_model()
    probs, from_logits = _exact_ensemble(model, X)
    error = (out - probs).abs().mean().item() if out.shape == probs.shape else math.inf
    ones = torch.ones(len(X))
    sums_to_one = torch.allclose(out.sum(-1), ones, atol=1e-4)
    if not (error <= 0.015 and sums_to_one):
        hint = known_mistake(out, MC_MISTAKES, lambda wrong: _mc_run(wrong, k, 0), rtol=1e-4)
        if hint:
            raise Fail(hint)
        if out.shape != probs.shape:
            raise Fail(f"shape {tuple(out.shape)}, expected (N, C) = {tuple(probs.shape)}: "
                       "one row of class probabilities per input")
        if not torch.isfinite(out).all():
            raise Fail("the output holds NaN or inf")
        if not sums_to_one and torch.allclose(out.exp().sum(-1), ones, atol=1e-3):
            raise Fail("these are log-probabilities: average the probabilities, "
                       "softmax(model(X)), not their logarithms")
        if not sums_to_one:
            raise Fail(NOT_PROBABILITIES)
        if (out - from_logits).abs().mean().item() < error:
            raise Fail(AVERAGED_LOGITS)
        single = _mc_run(fn, 1, seed=0)
        if isinstance(single, torch.Tensor) and torch.allclose(single.float(), out, atol=1e-6):
            raise Fail(SAME_PASSES)
        raise Fail(f"with k = {k} passes the average is {error:.3f} away from the exact "
                   "ensemble average (per probability): average softmax(model(X)) over k "
                   "passes with only the dropout modules in train mode")
    _mc_run(fn, 3, seed=1, train=True)  # a model that comes in train mode leaves in it
    return report("mc_predict", True, f"the mean of the probabilities, {error:.4f} from the "
                  "exact ensemble at k = 400; BatchNorm stayed in eval mode; the mode is "
                  "restored")


def _entropy_inputs():
    rows = [[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0], [0.7, 0.1, 0.1, 0.1]]
    generator = torch.Generator().manual_seed(5)
    random = torch.softmax(3 * torch.randn(7, 4, generator=generator), dim=1)
    return torch.cat([torch.tensor(rows), random])


@check
def check_entropy(fn):
    """fn(probs) -> entropy in nats of each row, shape (N,), 0 for one-hot rows."""
    probs = _entropy_inputs()
    want = entropy_reference(probs.double())
    out = fn(probs.clone())
    if not isinstance(out, torch.Tensor):
        try:
            out = torch.as_tensor(np.asarray(out, dtype=float))
        except (TypeError, ValueError):
            raise Fail(f"return a tensor, one entropy per row; got {type(out).__name__}") \
                from None
    out = out.detach().double()
    N, C = probs.shape
    if out.shape == (C,):
        raise Fail("one value per CLASS: you summed over the images. Sum over the classes, "
                   "dim=-1, to get one entropy per image")
    if out.shape == (N, 1):
        raise Fail("shape (N, 1): drop keepdim=True (or squeeze), so that the entropy can "
                   "index and plot like the labels, shape (N,)")
    if out.shape != (N,):
        raise Fail(f"shape {tuple(out.shape)}, expected ({N},): one entropy per row, summed "
                   "over the classes")
    if not torch.isfinite(out).all():
        raise Fail("NaN for rows with zero probabilities: 0·log 0 is NaN in floating point "
                   "but 0 in the entropy. Use torch.xlogy(p, p), or "
                   "p * log(p.clamp_min(1e-12))")
    if torch.allclose(out, want, atol=1e-5):
        return report("entropy", True, "0 for one-hot rows, log 4 for the uniform row, no NaN")
    big = want > 0.1
    ratio = (out[big] / want[big]).median().item()
    for factor, hint in [(-1.0, "the sign is wrong: H = -sum p log p is never negative"),
                         (1 / math.log(2), "this is in bits (log2): use the natural "
                          "logarithm, nats, as the loss does"),
                         (1 / math.log(10), "this uses log10: use the natural logarithm"),
                         (1 / C, "this is the MEAN over the classes: the entropy is the sum")]:
        if abs(ratio - factor) < 1e-3 * abs(factor) and torch.allclose(
                out[big], factor * want[big], rtol=1e-3):
            raise Fail(hint)
    if not torch.allclose(out[~big], want[~big], atol=1e-5) and \
            torch.allclose(out[big], want[big], rtol=1e-3):
        raise Fail("wrong for the (nearly) one-hot rows: the entropy of a certain "
                   "prediction is 0; a large epsilon inside the log spoils it")
    hint = known_mistake(out.float(), ENTROPY_MISTAKES, lambda wrong: wrong(probs.clone()),
                         rtol=1e-4)
    raise Fail(hint or f"wrong values, e.g. {out[1].item():.4f} for the uniform row over 4 "
               f"classes (want log 4 = {math.log(4):.4f}): -sum p log p over the classes")


def _selective_inputs():
    generator = torch.Generator().manual_seed(11)
    uncertainty = torch.rand(1000, generator=generator)
    correct = torch.rand(1000, generator=generator) > 0.9 * uncertainty ** 2
    return uncertainty, correct


@check
def check_selective_accuracy(fn):
    """fn(uncertainty, correct, coverage) -> accuracy on the `coverage` fraction of
    the images with the LOWEST uncertainty (a float between 0 and 1)."""
    uncertainty, correct = _selective_inputs()
    N = len(uncertainty)
    order = torch.argsort(uncertainty)
    for coverage in (0.5, 1.0, 0.1, 0.8):
        out = fn(uncertainty.clone(), correct.clone(), coverage)
        try:
            got = float(out)
        except (TypeError, ValueError):
            raise Fail(f"return one number (the accuracy), got {type(out).__name__}") from None
        wants = {correct[order[:keep]].float().mean().item()
                 for keep in {math.floor(coverage * N), math.ceil(coverage * N)} if keep}
        if any(abs(got - w) < 1e-6 for w in wants):
            continue
        if got > 1:
            raise Fail(f"{got:g} is a count: return the fraction of the kept images that "
                       "are correct")
        hint = known_mistake(got, SELECTIVE_MISTAKES, lambda wrong: wrong(
            uncertainty, correct, coverage), rtol=1e-5)
        want = selective_accuracy_reference(uncertainty, correct, coverage)
        raise Fail(f"at coverage {coverage}: " + (hint or (
            f"got {got:.4f}, expected {want:.4f}: keep the round(coverage*N) images with "
            "the lowest uncertainty and return the fraction of them that is correct")))
    return report("selective_accuracy", True, "accuracy on the least uncertain images, for "
                  "coverages 0.1 to 1")


# ---------------------------------------------------------------------------
# The known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

def _todo(*args):
    raise NotImplementedError("TODO")


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
    ({"combine": lambda z: torch.softmax(z.mean(0), -1)}, AVERAGED_LOGITS),
    ({"restore": False}, "still in train mode"),
    ({"switch": lambda m: m.train()}, "BatchNorm ran in train mode"),
    ({"switch": lambda m: m.eval()}, EVAL_MODE),
    ({"switch": lambda m: _dropout_on(m, everywhere=False)}, "sub-modules"),
    ({"reseed": True}, SAME_PASSES),
    ({"restore": False, "end_eval": True}, "restore the mode it had"),
    ({"combine": lambda z: z.mean(0)}, NOT_PROBABILITIES),
    ({"combine": lambda z: torch.softmax(z, -1)}, "you returned every pass (k, N, C): "
     "average over the passes (dim 0) to get (N, C)")]] + [
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
    Mistake(lambda P: 1 - P.max(1).values, "that is 1 - max probability, a different "
            "uncertainty score: the entropy is -sum_c p_c log p_c"),
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
