"""Checks for the exercises that run experiments.

Exercise 7 (test-time dropout):
    check_mc_predict, check_entropy, check_selective_accuracy.
Exercise 9 (training-set size):
    check_size_settings, check_dropout_gain.
Exercise 10 (network width):
    check_width_settings, check_nq_gain.

Every check prints one line, `[PASS] name: ...` or `[FAIL] name: hint`, and
returns True or False. Functions are checked on small inputs built so that each
classic mistake gives a different answer from the right one: a model with a
BatchNorm layer (which must stay in eval mode) and one dropout layer of four
units, whose 16 masks can be enumerated for the exact ensemble average; tables
whose rows are not in seed order and whose seeds differ a lot (so that only a
paired, seed-by-seed difference has the right spread). `p` is always the DROP
probability; Srivastava et al. (2014) write the keep probability q = 1 - p.
Checks that draw random numbers run under their own seed (torch.random.fork_rng):
they are reproducible and leave the notebook's random state alone.
"""
import itertools
import math
import numbers

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..sweep import DEFAULTS
from .engine import call_student, report, check

__all__ = ["check_mc_predict", "check_entropy", "check_selective_accuracy",
           "check_size_settings", "check_dropout_gain",
           "check_width_settings", "check_nq_gain"]


# ---------------------------------------------------------------------------
# Reference answers (the notebooks' solutions; the tests use them too)
# ---------------------------------------------------------------------------

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


def dropout_gain_reference(final, value="test_acc"):
    """Per training-set size: mean and std over seeds of the paired difference
    `value` (with dropout) - `value` (without), matched by seed."""
    with_dropout = final[final.p1 > 0].set_index(["n_train", "seed"])[value]
    without = final[final.p1 == 0].set_index(["n_train", "seed"])[value]
    return (with_dropout - without).groupby(level="n_train").agg(["mean", "std"])


def nq_gain_reference(final, n, q):
    """Per seed: test accuracy of width round(n/q) with drop probability 1 - q minus
    that of width n without dropout."""
    def accuracy(width, p):
        rows = final[(final.width == width) & np.isclose(final.p1, p)]
        return rows.set_index("seed")["test_acc"]
    return accuracy(round(n / q), 1 - q) - accuracy(n, 0.0)


# ---------------------------------------------------------------------------
# Exercise 7: Monte Carlo prediction
# ---------------------------------------------------------------------------

def _mc_model():
    """A small model whose dropout layer sits inside a sub-module, after a
    BatchNorm layer with running statistics that differ from any batch's, and
    before one more nonlinear layer (so that averaging logits is neither averaging
    probabilities nor eval mode). Returned in eval mode, with its input."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
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


def _call_seeded(name, fn, seed, *args):
    """call_student under its own seed, on one thread (the model is tiny: more
    threads only wait for each other, badly so on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return call_student(name, fn, *args)
    finally:
        torch.set_num_threads(threads)


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
    out, failed = _call_seeded(name, fn, 0, model, X, k)
    if failed is not None:
        return failed
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
        single, failed = _call_seeded(name, fn, 0, model, X, 1)
        if failed is not None:
            return failed
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
    _, failed = _call_seeded(name, fn, 1, model, X, 3)
    if failed is not None:
        return failed
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
    out, failed = call_student(name, fn, probs.clone())
    if failed is not None:
        return failed
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
        out, failed = call_student(name, fn, uncertainty.clone(), correct.clone(), coverage)
        if failed is not None:
            return failed
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
        want = selective_accuracy_reference(uncertainty, correct, coverage)
        keep = round(coverage * N)
        if got > 1:
            return report(name, False, f"{got:g} is a count: return the fraction of the kept "
                          "images that are correct")
        if abs(got - selective_accuracy_reference(-uncertainty, correct, coverage)) < 1e-6:
            return report(name, False, f"at coverage {coverage} you kept the MOST uncertain "
                          "images: sort by uncertainty in increasing order and keep the "
                          "first ones (abstain on the most uncertain)")
        if coverage < 1 and abs(got - correct.float().mean().item()) < 1e-6:
            return report(name, False, f"at coverage {coverage} you returned the accuracy on "
                          "all images: keep only that fraction, the least uncertain")
        if abs(got - want * keep / N) < 1e-6:
            return report(name, False, "you divided by the number of ALL images: the "
                          "accuracy is over the kept images only")
        return report(name, False, f"at coverage {coverage} got {got:.4f}, expected "
                      f"{want:.4f}: keep the round(coverage*N) images with the lowest "
                      "uncertainty and return the fraction of them that is correct")
    return report(name, True, "accuracy on the least uncertain images, for coverages 0.1 "
                  "to 1")


# ---------------------------------------------------------------------------
# Exercise 9: settings for the training-set sizes, gain per size
# ---------------------------------------------------------------------------

def _key(values):
    return tuple(round(float(v), 6) for v in values)


def _settings_problem(settings, what):
    """A hint if `settings` is not a list of dl.sweep dicts, else None."""
    if isinstance(settings, dict) or not isinstance(settings, (list, tuple)):
        return (f"settings must be a list of dicts, one per net, got "
                f"{type(settings).__name__}")
    if not settings:
        return "settings is empty"
    for s in settings:
        if not isinstance(s, dict):
            return f"each setting must be a dict for dl.sweep, e.g. {what}; got {s!r}"
        unknown = sorted(set(s) - set(DEFAULTS))
        if unknown:
            return (f"dl.sweep does not know the key(s) {unknown}; its keys are "
                    f"{sorted(DEFAULTS)}")
        d = s.get("dropout", DEFAULTS["dropout"])
        if isinstance(d, numbers.Number) or not hasattr(d, "__len__"):
            return f"'dropout' must be a tuple, one rate per hidden layer; got {d!r}"
    return None


@check
def check_size_settings(settings, sizes, epochs=None):
    """settings: dl.sweep dicts, for every size in `sizes` one net without dropout
    (0.0, 0.0) and one with (0.5, 0.5), n_train = size; the two nets of one size
    differ only in dropout. epochs (optional): {size: epochs} that each must use."""
    name = "size settings"
    problem = _settings_problem(settings, "{'dropout': (0.5, 0.5), 'n_train': 500}")
    if problem:
        return report(name, False, problem)
    if any("n_train" not in s for s in settings):
        return report(name, False, "a setting has no 'n_train': without it the net trains on "
                      "all 60,000 images. Give each setting n_train=size")
    for s in settings:
        n = s["n_train"]
        if n is not None and (not isinstance(n, numbers.Integral) or isinstance(n, bool)):
            if isinstance(n, numbers.Real) and 0 < n < 1:
                return report(name, False, f"n_train={n} looks like a fraction: it is a number "
                              "of training images, e.g. 500")
            if not (isinstance(n, numbers.Real) and float(n).is_integer()):
                return report(name, False, f"n_train must be a whole number of images, "
                              f"got {n!r}")
    dropouts = {_key(s.get("dropout", DEFAULTS["dropout"])) for s in settings}
    if (1.0, 1.0) in dropouts:
        return report(name, False, "dropout (1.0, 1.0) drops every unit: p is the DROP "
                      "probability, so no dropout is (0.0, 0.0)")
    size_of = {None: 60000}
    got = [(int(size_of.get(s["n_train"], s["n_train"] or 0)),
            _key(s.get("dropout", DEFAULTS["dropout"]))) for s in settings]
    want = {(int(n), d) for n in sizes for d in [(0.0, 0.0), (0.5, 0.5)]}
    if len(got) != len(set(got)):
        twice = sorted({g for g in got if got.count(g) > 1})
        return report(name, False, f"some (n_train, dropout) appear twice, e.g. {twice[0]}")
    missing, extra = want - set(got), set(got) - want
    if missing:
        without = {n for n, d in missing if d == (0.0, 0.0)}
        if without and not {n for n, d in missing if d != (0.0, 0.0)}:
            return report(name, False, f"no net WITHOUT dropout for sizes {sorted(without)}: "
                          "each size needs dropout (0.0, 0.0) and (0.5, 0.5)")
        if {n for n, _ in missing} == {int(n) for n in sizes} and not extra - {
                (n, d) for n, d in set(got) if d == (0.0, 0.0)}:
            return report(name, False, "no net WITH dropout (0.5, 0.5): each size needs both")
        return report(name, False, f"{len(missing)} of {len(want)} settings missing, e.g. "
                      f"n_train={sorted(missing)[0][0]} with dropout {sorted(missing)[0][1]}"
                      + (f"; unexpected: {sorted(extra)[:2]}" if extra else ""))
    if extra:
        return report(name, False, f"settings outside the sizes and the two dropout settings: "
                      f"{sorted(extra)[:3]}")
    by_size = {}
    for s, (n, _) in zip(settings, got):
        rest = {k: v for k, v in s.items() if k != "dropout"}
        by_size.setdefault(n, []).append(rest)
    for n, rests in sorted(by_size.items()):
        if any(r != rests[0] for r in rests):
            return report(name, False, f"at n_train={n} the nets with and without dropout "
                          "differ in more than the dropout (epochs, batch size, ...): for a "
                          "paired comparison they must train identically")
    if epochs is not None:
        for n, rests in sorted(by_size.items()):
            e = rests[0].get("epochs", DEFAULTS["epochs"])
            if n in epochs and e != epochs[n]:
                missing = " (no 'epochs' key, so dl.sweep used 10)" \
                    if "epochs" not in rests[0] else ""
                return report(name, False, f"n_train={n} trains for {e} epochs{missing}; "
                              f"the plan gives it {epochs[n]}: use epochs=EPOCHS[n]")
    return report(name, True, f"{len(settings)} settings: {len(sizes)} sizes x without/with "
                  "dropout, identical otherwise")


def _synthetic_sizes():
    """A table like the notebook's `final`: one row per model, sizes 100, 1000,
    10000, p1 in {0, 0.5}, seeds 4, 5, 6 with large seed effects shared by both
    settings; rows of some groups out of seed order."""
    sizes, seeds = [100, 1000, 10000], [4, 5, 6]
    seed_effect = {4: 0.020, 5: -0.015, 6: 0.001}
    base = {100: 0.66, 1000: 0.76, 10000: 0.83}
    gain = {100: 0.002, 1000: 0.018, 10000: 0.006}
    wobble = [0.0021, -0.0013, 0.0034, -0.0027, 0.0008, 0.0016, -0.0031, 0.0005, -0.0011]
    rows = []
    for i, (n, p) in enumerate(itertools.product(sizes, [0.0, 0.5])):
        order = [6, 4, 5] if i % 2 else seeds
        for j, seed in enumerate(order):
            test = base[n] + seed_effect[seed] + (gain[n] if p else 0) + wobble[(i + j) % 9]
            train = min(1.0, test + 0.3 * (1 - math.log10(n) / 5) - (0.08 if p else 0)
                        + 2 * seed_effect[seed] - wobble[(2 * i + j) % 9])
            rows.append({"setting": i, "dropout": (p, p), "p1": p, "p2": p, "n_train": n,
                         "seed": seed, "train_acc": train, "test_acc": test,
                         "gap": train - test})
    return pd.DataFrame(rows)


@check
def check_dropout_gain(fn):
    """fn(final, value) -> DataFrame indexed by n_train (increasing), columns mean and
    std: over seeds, the paired difference value(with dropout) - value(without)."""
    name = "dropout gain"
    final = _synthetic_sizes()
    for value in ("test_acc", "gap"):
        want = dropout_gain_reference(final, value)
        out, failed = call_student(name, fn, final.copy(), value)
        if failed is not None:
            return failed
        if not isinstance(out, pd.DataFrame) or not {"mean", "std"} <= set(out.columns):
            return report(name, False, "return a DataFrame with columns 'mean' and 'std', one "
                          "row per size (e.g. .groupby(...).agg(['mean', 'std']))")
        index = [int(v) for v in out.index] if len(out) else []
        if index != [int(v) for v in want.index]:
            return report(name, False, f"the rows must be the sizes {list(want.index)} in "
                          f"increasing order, got {list(out.index)}")
        mean = out["mean"].astype(float).to_numpy()
        std = out["std"].astype(float).to_numpy()
        if value == "gap":
            test = dropout_gain_reference(final, "test_acc")
            if np.allclose(mean, test["mean"], atol=1e-9):
                return report(name, False, "you always used test_acc: use the column named "
                              "by the argument `value` (here 'gap')")
        if np.allclose(mean, -want["mean"], atol=1e-9):
            return report(name, False, "the sign is reversed: gain = with dropout MINUS without "
                          "(positive when dropout helps)")
        if not np.allclose(mean, want["mean"], atol=1e-9):
            return report(name, False, f"wrong mean for {value}: per size, the difference "
                          "(p1 > 0) - (p1 = 0) averaged over seeds")
        groups = final.groupby(["n_train", "p1"])[value]
        unpaired = np.sqrt(groups.var().unstack("p1").sum(axis=1)).to_numpy()
        if np.allclose(std, unpaired, atol=1e-9):
            return report(name, False, "your std combines the two settings' spreads as if "
                          "independent; the seeds are paired (same init and data): take the "
                          "difference seed by seed, then its std")
        ddof0 = want["std"] * math.sqrt(2 / 3)
        if not (np.allclose(std, want["std"], atol=1e-9) or np.allclose(std, ddof0, atol=1e-9)):
            return report(name, False, "the std is wrong: subtract seed by seed, aligned on "
                          "the seed (e.g. set_index(['n_train', 'seed'])), not row by row in "
                          "table order; then the std over seeds per size")
    return report(name, True, "paired differences per seed, mean and std per size")


# ---------------------------------------------------------------------------
# Exercise 10: width grid and the n/q rule
# ---------------------------------------------------------------------------

@check
def check_width_settings(settings, widths, rates):
    """settings: dl.sweep dicts, one per (width, rate): hidden=(w, w), dropout=(p, p),
    each pair once, identical otherwise."""
    name = "width settings"
    problem = _settings_problem(settings, "{'hidden': (128, 128), 'dropout': (0.5, 0.5)}")
    if problem:
        return report(name, False, problem)
    pairs = []
    for s in settings:
        hidden = s.get("hidden", DEFAULTS["hidden"])
        if isinstance(hidden, numbers.Number):
            return report(name, False, f"hidden={hidden!r}: give the widths of both hidden "
                          f"layers as a tuple, hidden=({hidden}, {hidden})")
        dropout = s.get("dropout", DEFAULTS["dropout"])
        if len(hidden) == 1:
            return report(name, False, f"hidden={tuple(hidden)} is ONE hidden layer: the "
                          "chapter's net has two of the same width, hidden=(w, w)")
        if len(hidden) != 2 or hidden[0] != hidden[1]:
            return report(name, False, f"hidden={tuple(hidden)}: two hidden layers of the "
                          "same width, hidden=(w, w)")
        if len(dropout) != 2 or dropout[0] != dropout[1]:
            return report(name, False, f"dropout={tuple(dropout)}: the same rate after both "
                          "hidden layers, dropout=(p, p)")
        pairs.append((int(hidden[0]), round(float(dropout[0]), 6)))
    want = {(int(w), round(float(p), 6)) for w in widths for p in rates}
    got = set(pairs)
    if len(pairs) != len(got):
        twice = sorted({x for x in pairs if pairs.count(x) > 1})
        return report(name, False, f"(width, p) = {twice[0]} appears more than once")
    keep = {(w, round(1 - p, 6)) for w, p in want}
    if got == keep != want:
        return report(name, False, "these are keep probabilities q = 1 - p: dl.sweep uses the "
                      "DROP probability p")
    missing, extra = want - got, got - want
    if missing and len(got) == min(len(widths), len(rates)):
        return report(name, False, "each width with ONE rate: you paired them with zip; the "
                      "grid is every width with every rate (itertools.product)")
    if missing:
        return report(name, False, f"{len(missing)} of {len(want)} (width, p) missing, e.g. "
                      f"{sorted(missing)[0]}")
    if extra:
        return report(name, False, f"(width, p) outside the grid: {sorted(extra)[:3]}")
    rests = [{k: v for k, v in s.items() if k not in ("hidden", "dropout")} for s in settings]
    if any(r != rests[0] for r in rests):
        return report(name, False, "the settings differ in more than width and rate (epochs, "
                      "n_train, ...): give them all the same values")
    return report(name, True, f"{len(want)} settings = {len(widths)} widths x "
                  f"{len(rates)} rates, two equal hidden layers each")


def _synthetic_widths():
    """One row per model: widths 32..512 with p1 in {0, 0.2, 0.5, 0.8} (some
    combinations only, among them the wrong answers' rows), seeds 0, 1, 2 with large
    shared seed effects, rows not in seed order."""
    grid = [(w, p) for w in (32, 64, 128, 256) for p in (0.0, 0.2, 0.5)]
    grid += [(40, 0.2), (80, 0.2), (160, 0.2), (320, 0.2), (512, 0.5), (80, 0.8), (320, 0.8)]
    seed_effect = {0: 0.012, 1: -0.017, 2: 0.004}
    rows = []
    for i, (w, p) in enumerate(grid):
        order = [2, 0, 1] if i % 3 == 1 else [0, 1, 2]
        for j, seed in enumerate(order):
            acc = (0.80 + 0.012 * math.log2(w / 32) - 0.05 * p * 64 / w
                   + seed_effect[seed] + 0.0007 * ((3 * i + 2 * j) % 7))
            rows.append({"setting": i, "hidden": (w, w), "dropout": (p, p), "width": w,
                         "p1": float(p), "p2": float(p), "seed": seed, "test_acc": acc})
    return pd.DataFrame(rows)


@check
def check_nq_gain(fn):
    """fn(final, n, q) -> Series indexed by seed: test_acc at width round(n/q) with
    drop probability 1 - q, minus test_acc at width n without dropout."""
    name = "n/q comparison"
    final = _synthetic_widths()
    for n, q in [(128, 0.5), (64, 0.8), (256, 0.8)]:
        want = nq_gain_reference(final, n, q)
        out, failed = call_student(name, fn, final.copy(), n, q)
        if failed is not None:
            return failed
        if isinstance(out, pd.DataFrame) and out.shape[1] == 1:
            out = out.iloc[:, 0]
        if not isinstance(out, pd.Series):
            return report(name, False, f"return a pandas Series indexed by seed, got "
                          f"{type(out).__name__}")
        if out.empty or out.isna().all():
            return report(name, False, f"for n={n}, q={q} no rows matched: 1 - {q} is "
                          f"{1 - q!r} in floating point, and {n}/{q} = {n / q!r}; compare "
                          "with np.isclose(final.p1, 1 - q) and width == round(n / q)")
        if sorted(out.index.tolist()) != sorted(want.index.tolist()):
            return report(name, False, f"the index must be the seeds {sorted(want.index)}, "
                          f"got {list(out.index)[:6]}")
        got = out.astype(float).reindex(want.index)
        if np.allclose(got, want, atol=1e-9):
            continue

        def diff(w1, p1, w0, p0):
            def acc(w, p):
                rows = final[(final.width == w) & np.isclose(final.p1, p)]
                return rows.set_index("seed")["test_acc"]
            return (acc(w1, p1) - acc(w0, p0)).reindex(want.index)
        wide = round(n / q)
        if np.allclose(got, -want, atol=1e-9):
            return report(name, False, "the sign is reversed: return (wide net with dropout) "
                          "minus (width n without), positive when the rule holds or better")
        candidates = [
            (diff(round(n * q), 1 - q, n, 0.0), f"you used width n·q = {round(n * q)}: the "
             f"rule says a dropout net needs n/q = {wide} units to match n without dropout"),
            (diff(wide, q, n, 0.0), f"you used p = q = {q}: q is the KEEP probability, the "
             f"drop probability is p = 1 - q = {1 - q:g}"),
            (diff(wide, 0.0, n, 0.0), "both nets are without dropout: the wide one needs "
             "dropout p = 1 - q"),
            (diff(n, 1 - q, n, 0.0), "both nets have width n: the dropout net should be n/q "
             "wide"),
        ]
        for candidate, hint in candidates:
            if not candidate.isna().any() and np.allclose(got, candidate, atol=1e-9):
                return report(name, False, hint)
        if np.isclose(got.mean(), want.mean(), atol=1e-9):
            return report(name, False, "the mean is right but the single differences are not: "
                          "subtract seed by seed (set_index('seed')), not row by row")
        return report(name, False, f"for n={n}, q={q}: expected test_acc(width {wide}, "
                      f"p={1 - q:g}) - test_acc(width {n}, p=0) per seed")
    return report(name, True, "paired per seed, width n/q with p = 1 - q against width n "
                  "without dropout")
