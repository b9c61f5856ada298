"""Checks for exercise 3 (activation variance) and exercise 4 (weight decay and dropout).

Exercise 3: `check_variance_prediction(fn)` for fn(h, p) = Var[h] + p/(1-p)·E[h²]
per unit, and `check_collect_activations(fn)` for the forward-hook function
fn(model, X, train) -> [(h, h_dropped), ...], one pair per hidden layer.
Exercise 4: `check_wd_grid(settings, wds, ps)` for the list of dl.sweep settings,
and `check_interaction(fn)` for fn(final) -> the per-seed interaction table.

Every check prints one [PASS]/[FAIL] line (see report.py) and returns a bool.
The reference implementations (`reference_*`) are used by the checks and tests.
"""
import itertools
import math

import pandas as pd
import torch

from ..sweep import DEFAULTS
from ..training import make_mlp
from .engine import call_student, report, check

__all__ = ["check_variance_prediction", "check_collect_activations", "check_wd_grid",
           "check_interaction"]

# ------------------------------------------------------------------ exercise 3


def reference_variance_prediction(h, p):
    """Var[h'] predicted per unit: Var[h] + p/(1-p)·E[h²], both over examples (dim 0)."""
    return h.var(0, unbiased=False) + p / (1 - p) * (h ** 2).mean(0)


def _activations(n=4000, units=6, seed=0):
    """ReLU-like test activations whose units differ in mean and spread (float64),
    so that E[h²] and Var[h] differ clearly, and per unit from pooled."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.linspace(-0.5, 2.0, units, dtype=torch.float64)
    scale = torch.linspace(0.5, 2.0, units, dtype=torch.float64)
    return torch.relu(torch.randn(n, units, generator=g, dtype=torch.float64) * scale + shift)


def _prediction_mistakes(h, p):
    """The classic wrong formulas, each with its hint."""
    var, msq, mean = h.var(0, unbiased=False), (h ** 2).mean(0), h.mean(0)
    r = p / (1 - p)
    inv = (1 - p) / p if p > 0 else math.inf
    return [
        (var + r * var, "you used p/(1-p)·Var[h]; the added term is p/(1-p)·E[h²], the mean "
                        "of the SQUARES (the mask multiplies h, not h - E[h])"),
        (var + p * msq, "the factor is p/(1-p), not p: the survivors are scaled by 1/(1-p), "
                        "which is where the 1/(1-p) comes from"),
        (var + inv * msq, "the factor is p/(1-p), not (1-p)/p: with p the DROP probability, "
                          "more dropping must mean more variance"),
        (var + r * mean ** 2, "you used E[h]²; the added term is p/(1-p)·E[h²] (the mean of "
                              "the squares, not the square of the mean)"),
        (r * msq, "you returned only the noise term p/(1-p)·E[h²]: add Var[h]"),
        (msq / (1 - p), "that is E[h'²] = E[h²]/(1-p), the second moment; subtract E[h']² = "
                        "E[h]² to get the variance"),
        (var, "you returned Var[h]: the prediction must grow with p"),
        (var.sqrt() + r * msq, "you used the standard deviation of h where its variance "
                               "belongs"),
    ]


@check
def check_variance_prediction(fn):
    """fn(h, p) -> a (units,) tensor: Var[h] + p/(1-p)·E[h²] per unit, over examples."""
    name = "check_variance_prediction"
    h = _activations()
    first, failed = call_student(name, fn, h.clone(), 0.5)
    if failed is not None:
        return failed
    again, _ = call_student(name, fn, h.clone(), 0.5)
    if isinstance(first, torch.Tensor) and isinstance(again, torch.Tensor) and \
            first.shape == again.shape and not torch.equal(first, again):
        return report(name, False, "two calls with the same h gave different results: "
                      "compute the formula from h, not a Monte Carlo estimate with random masks")
    for p in (0.2, 0.5, 0.8, 0.0):
        out, failed = call_student(name, fn, h.clone(), p)
        if failed is not None:
            return failed
        try:
            out = torch.as_tensor(out, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return report(name, False, f"return a tensor, got {type(out).__name__}")
        right = reference_variance_prediction(h, p)
        if out.numel() == 1:
            pooled = h.var(unbiased=False) + p / (1 - p) * (h ** 2).mean()
            if torch.isclose(out.reshape(()), pooled, rtol=1e-3) or \
                    torch.isclose(out.reshape(()), right.mean(), rtol=1e-3):
                return report(name, False, "you returned one number; return one value per "
                              "unit, shape (units,), with the variance over examples (dim 0); "
                              "average over units afterwards")
            return report(name, False, f"return one value per unit, shape {tuple(right.shape)}, "
                          "not a single number")
        if out.shape == (h.shape[0],):
            return report(name, False, f"shape {tuple(out.shape)}: you computed over units "
                          "(dim 1); compute over examples (dim 0), one value per unit")
        if out.shape != right.shape:
            return report(name, False, f"shape {tuple(out.shape)}, expected {tuple(right.shape)}"
                          " (one value per unit)")
        if torch.allclose(out, right, rtol=1e-3, atol=1e-9):
            continue
        for wrong, hint in _prediction_mistakes(h, p):
            if torch.allclose(out, wrong, rtol=1e-3, atol=1e-9):
                return report(name, False, f"at p = {p}: {hint}")
        return report(name, False, f"at p = {p}: expected {right[:3].tolist()} ... for the "
                      f"first units, got {out[:3].tolist()} ...; the formula is "
                      "Var[h] + p/(1-p)·E[h²], per unit, over examples")
    return report(name, True, "Var[h] + p/(1-p)·E[h²] per unit, right for p = 0, 0.2, 0.5, 0.8")


def reference_collect_activations(model, X, train):
    """Run X through the model in train mode (train=True) or eval mode and return, per
    hidden layer, the pair (h, h_dropped): the ReLU's output and the Dropout's output.
    The model's mode is restored and the hooks removed afterwards."""
    captured, handles = [], []

    def keep(module, inputs, output):
        captured.append(output.detach())

    for module in model.modules():
        if isinstance(module, (torch.nn.ReLU, torch.nn.Dropout)):
            handles.append(module.register_forward_hook(keep))
    was_training = model.training
    model.train(train)
    try:
        with torch.no_grad():
            model(X)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return list(zip(captured[0::2], captured[1::2]))


def _tiny_model_and_data():
    """A 10-32-16-10 MLP with dropout 0.5 then 0.25, and 3000 random inputs."""
    model = make_mlp(dropout=(0.5, 0.25), hidden=(32, 16), seed=0, num_inputs=10)
    X = torch.randn(3000, 10, generator=torch.Generator().manual_seed(1))
    return model, X


def _has_hooks(model):
    return any(len(m._forward_hooks) or len(m._forward_pre_hooks) for m in model.modules())


def _check_pairs(name, pairs, n_layers, X):
    """Format: a list of n_layers (h, h_dropped) pairs of (n, units) tensors."""
    if not isinstance(pairs, (list, tuple)):
        return report(name, False, "return a list with one (h, h_dropped) pair per hidden "
                      f"layer, got {type(pairs).__name__}")
    if len(pairs) != n_layers:
        return report(name, False, f"{len(pairs)} entries for a net with {n_layers} hidden "
                      "layers: return one (h, h_dropped) pair per hidden layer (hook each ReLU"
                      " and each Dropout once; clear what you collected between calls)")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or \
                not all(isinstance(t, torch.Tensor) for t in pair):
            return report(name, False, f"entry {i} is not a pair of tensors (h, h_dropped)")
        if pair[0].shape != pair[1].shape or pair[0].shape[0] != len(X):
            return report(name, False, f"layer {i + 1}: shapes {tuple(pair[0].shape)} and "
                          f"{tuple(pair[1].shape)}; expected (examples, units) for both")
    return None


@check
def check_collect_activations(fn):
    """fn(model, X, train) -> [(h, h_dropped), ...] per hidden layer, via forward hooks."""
    name = "check_collect_activations"
    model, X = _tiny_model_and_data()
    ref_eval = reference_collect_activations(model, X, train=False)
    rates = [m.p for m in model if isinstance(m, torch.nn.Dropout)]
    for start_mode, train in ((True, False), (False, True), (True, True), (False, False)):
        model.train(start_mode)
        torch.manual_seed(0)
        pairs, failed = call_student(name, fn, model, X, train)
        if failed is not None:
            return failed
        bad = _check_pairs(name, pairs, len(rates), X)
        if bad is not None:
            return bad
        if _has_hooks(model):
            return report(name, False, "hooks are still attached after your function returned:"
                          " keep the handles of register_forward_hook and call "
                          "handle.remove() (in a finally: block)")
        if model.training != start_mode:
            return report(name, False, f"the model came in {'train' if start_mode else 'eval'}"
                          f" mode and left in {'train' if model.training else 'eval'} mode: "
                          "remember model.training and restore it at the end")
        if any(t.requires_grad for pair in pairs for t in pair):
            return report(name, False, "the tensors still carry the autograd graph: run the "
                          "forward pass under torch.no_grad() (or .detach() in the hook)")
        h1, h1_out = pairs[0]
        if not torch.allclose(h1, ref_eval[0][0], atol=1e-5):
            if (h1 < 0).any():
                return report(name, False, "h has negative values: hook the ReLU's output "
                              "(after the activation), not the Linear layer's")
            if torch.allclose(h1_out, ref_eval[0][0], atol=1e-5):
                return report(name, False, "the pair looks swapped: return (h, h_dropped), "
                              "the ReLU's output first")
            return report(name, False, "layer 1's h is not the ReLU output of the first "
                          "Linear layer: hook each ReLU and each Dropout, in network order")
        if not train:
            for i, ((h, out), (h_ref, _)) in enumerate(zip(pairs, ref_eval)):
                if not torch.equal(h, out):
                    return report(name, False, f"train=False, layer {i + 1}: the dropout "
                                  "output differs from its input, so dropout was active: "
                                  "call model.eval() (model.train(False)) before the forward")
                if not torch.allclose(h, h_ref, atol=1e-5):
                    return report(name, False, f"train=False, layer {i + 1}: h differs from "
                                  "the eval-mode activations")
            continue
        for i, ((h, out), p) in enumerate(zip(pairs, rates)):
            if torch.equal(h, out):
                return report(name, False, f"train=True, layer {i + 1}: the dropout output "
                              "equals its input: call model.train() before the forward, and "
                              "hook the Dropout's OUTPUT (the hook's third argument)")
            kept = out != 0
            scale = (out[kept] / h[kept]).mean().item()
            dropped = ((out == 0) & (h != 0)).sum().item() / max(1, (h != 0).sum().item())
            if abs(scale - 1 / (1 - p)) > 1e-3 or abs(dropped - p) > 0.05:
                return report(name, False, f"train=True, layer {i + 1} (p = {p}): the second "
                              "tensor is not the dropout output of the first (survivors "
                              f"scaled by {scale:.3f}, {dropped:.1%} of units dropped); "
                              "pair each ReLU with the Dropout that follows it")
    return report(name, True, "one (h, h_dropped) pair per hidden layer, right in train and "
                  "eval mode; mode restored and hooks removed")


# ------------------------------------------------------------------ exercise 4


def _fmt(values):
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


@check
def check_wd_grid(settings, wds, ps):
    """settings: a list of dl.sweep dicts, one per (weight decay, p) pair of the grid
    wds × ps, with dropout=(p, p); everything else the same in all settings."""
    name = "check_wd_grid"
    wds, ps = [float(w) for w in wds], [float(p) for p in ps]
    if settings is None:
        return report(name, False, "settings is None: build the list of dicts")
    if not isinstance(settings, (list, tuple)) or \
            not all(isinstance(s, dict) for s in settings):
        return report(name, False, "settings must be a list of dicts, e.g. "
                      "[{'weight_decay': 0.0, 'dropout': (0.0, 0.0)}, ...]")
    aliases = {"wd": "weight_decay", "lambda": "weight_decay", "l2": "weight_decay",
               "p": "dropout", "p1": "dropout", "p2": "dropout", "drop": "dropout"}
    for s in settings:
        unknown = sorted(set(s) - set(DEFAULTS))
        if unknown:
            better = {k: aliases[k] for k in unknown if k in aliases}
            hint = f" (did you mean {better}?)" if better else ""
            return report(name, False, f"unknown key(s) {unknown}{hint}: dl.sweep knows "
                          f"{sorted(DEFAULTS)}")
        missing = [k for k in ("weight_decay", "dropout") if k not in s]
        if missing:
            return report(name, False, f"a setting lacks {missing}: give both weight_decay "
                          "and dropout in every setting (the defaults would hide the grid)")
        d = s["dropout"]
        if not isinstance(d, (tuple, list)):
            return report(name, False, f"dropout={d!r}: give one rate per hidden layer, "
                          "a tuple like (p, p)")
        if len(d) != 2 or d[0] != d[1]:
            return report(name, False, f"dropout={tuple(d)}: use the same p in both hidden "
                          "layers, dropout=(p, p)")
    others = {k for s in settings for k in s} - {"weight_decay", "dropout"}
    for k in sorted(others):
        values = {repr(s.get(k, DEFAULTS[k])) for s in settings}
        if len(values) > 1:
            return report(name, False, f"the settings differ in {k!r} ({sorted(values)}): only "
                          "weight_decay and dropout may vary, or the comparison is unfair")
    pairs = [(float(s["weight_decay"]), float(s["dropout"][0])) for s in settings]
    want = list(itertools.product(wds, ps))
    if len(set(pairs)) < len(pairs):
        dup = sorted({x for x in pairs if pairs.count(x) > 1})
        return report(name, False, f"duplicate settings {dup}: each (weight_decay, p) once")
    if set(pairs) == set(want):
        return report(name, True, f"{len(want)} settings: weight decay {_fmt(wds)} × "
                      f"p {_fmt(ps)}, p the same in both layers")
    if len(pairs) == min(len(wds), len(ps)):
        return report(name, False, f"{len(pairs)} settings, the grid has {len(want)}: did "
                      "you zip() the two lists? Loop over both (itertools.product)")
    keep = {(w, round(1 - p, 12)) for w, p in want}
    if {(w, round(p, 12)) for w, p in pairs} == keep and set(ps) != {1 - p for p in ps}:
        return report(name, False, "your rates are KEEP probabilities 1 - p; dropout takes "
                      "the DROP probability p")
    missing = sorted(set(want) - set(pairs))
    extra = sorted(set(pairs) - set(want))
    return report(name, False, f"(weight_decay, p) missing: {missing[:4]}"
                  f"{' ...' if len(missing) > 4 else ''}; not in the grid: {extra[:4]}")


INTERACTION_COLUMNS = ["weight_decay", "p1", "seed", "gain_wd", "gain_p", "gain_both",
                       "interaction"]


def reference_interaction(final, value="test_acc"):
    """Per seed, for every weight_decay > 0 and p1 > 0: the gains over the baseline
    (weight_decay = 0, p1 = 0) of the same seed, of wd alone, p alone and both, and
    interaction = gain_both - (gain_wd + gain_p)."""
    acc = final.set_index(["weight_decay", "p1", "seed"])[value]
    rows = []
    for (wd, p, seed), both in acc.items():
        if wd == 0 or p == 0:
            continue
        base = acc[(0.0, 0.0, seed)]
        gain_wd, gain_p = acc[(wd, 0.0, seed)] - base, acc[(0.0, p, seed)] - base
        rows.append({"weight_decay": wd, "p1": p, "seed": seed, "gain_wd": gain_wd,
                     "gain_p": gain_p, "gain_both": both - base,
                     "interaction": both - base - gain_wd - gain_p})
    return pd.DataFrame(rows, columns=INTERACTION_COLUMNS)


def synthetic_final(seed=0):
    """A made-up final-epoch table (weight_decay, p1, seed, test_acc, ...) in shuffled
    order: additive effects + a known interaction + per-seed and per-model noise."""
    g = torch.Generator().manual_seed(seed)
    wds, ps, seeds = (0.0, 1e-3, 1e-2), (0.0, 0.2, 0.5), (0, 1, 2)
    effect_wd = {0.0: 0.0, 1e-3: 0.004, 1e-2: 0.010}
    effect_p = {0.0: 0.0, 0.2: 0.006, 0.5: 0.003}
    rows = []
    for wd, p, s in itertools.product(wds, ps, seeds):
        acc = (0.80 + effect_wd[wd] + effect_p[p] - 2.0 * wd * p + 0.003 * s
               + 0.002 * torch.randn((), generator=g).item())
        rows.append({"epoch": 10, "weight_decay": wd, "p1": p, "p2": p, "seed": s,
                     "train_acc": acc + 0.05, "test_acc": acc})
    order = torch.randperm(len(rows), generator=g).tolist()
    return pd.DataFrame([rows[i] for i in order])


@check
def check_interaction(fn):
    """fn(final) -> one row per (weight_decay > 0, p1 > 0, seed) with INTERACTION_COLUMNS."""
    name = "check_interaction"
    final = synthetic_final()
    before = final.copy()
    out, failed = call_student(name, fn, final)
    if failed is not None:
        return failed
    if not isinstance(out, pd.DataFrame):
        return report(name, False, f"return a pandas DataFrame, got {type(out).__name__}")
    if not final.equals(before):
        return report(name, False, "your function changed the table it was given; work on "
                      "a copy")
    missing = [c for c in INTERACTION_COLUMNS if c not in out.columns]
    if "seed" in missing:
        return report(name, False, "no seed column: compute the interaction per seed (each "
                      "seed against its own baseline), then average over seeds afterwards")
    if missing:
        return report(name, False, f"missing column(s) {missing}; expected "
                      f"{INTERACTION_COLUMNS}")
    right = reference_interaction(final)
    keys = ["weight_decay", "p1", "seed"]
    if len(out) != len(right):
        zeros = out[(out.weight_decay == 0) | (out.p1 == 0)]
        if len(zeros) and len(out) - len(zeros) == len(right):
            return report(name, False, "leave out the rows with weight_decay = 0 or p1 = 0: "
                          "they have no combination to compare")
        return report(name, False, f"{len(out)} rows, expected {len(right)}: one per seed "
                      "and per (weight_decay > 0, p1 > 0)")
    merged = right.merge(out[INTERACTION_COLUMNS], on=keys, how="left",
                         suffixes=("", "_yours"))
    if merged["interaction_yours"].isna().any():
        return report(name, False, "your (weight_decay, p1, seed) rows do not match the "
                      "table's: one row per seed for every weight_decay > 0 and p1 > 0")

    def close(a, b):
        return bool(((merged[a] - merged[b]).abs() < 1e-9).all())

    base = final[(final.weight_decay == 0) & (final.p1 == 0)].set_index("seed")["test_acc"]
    merged["baseline"] = merged["seed"].map(base)
    merged["accuracy"] = merged["gain_both"] + merged["baseline"]
    for col in ("gain_wd", "gain_p", "gain_both"):
        yours = f"{col}_yours"
        if close(col, yours):
            continue
        other = {"gain_wd": "gain_p", "gain_p": "gain_wd"}.get(col)
        if other and close(other, yours):
            return report(name, False, "gain_wd and gain_p are swapped: gain_wd is the gain "
                          "of weight decay alone (p = 0), gain_p of dropout alone (wd = 0)")
        if ((merged[yours] + merged[col]).abs() < 1e-9).all():
            return report(name, False, f"{col} has the wrong sign: a gain is the setting's "
                          "accuracy MINUS the baseline's")
        if col == "gain_both" and close("accuracy", yours):
            return report(name, False, "gain_both is the accuracy itself: subtract the "
                          "baseline (weight_decay = 0, p1 = 0) accuracy of the same seed")
        means = merged.groupby(["weight_decay", "p1"])
        if (means[col].mean() - means[yours].mean()).abs().max() < 1e-9:
            return report(name, False, f"{col} is right on average over seeds but not per "
                          "seed: subtract the baseline of the SAME seed (paired comparison)")
        return report(name, False, f"{col} is wrong: the gain of a setting is its accuracy "
                      "minus the baseline's (weight_decay = 0, p1 = 0), seed by seed")
    if close("interaction", "interaction_yours"):
        return report(name, True, "per-seed gains and interaction = gain_both - (gain_wd + "
                      "gain_p) are right on a synthetic table")
    if ((merged["interaction"] + merged["interaction_yours"]).abs() < 1e-9).all():
        return report(name, False, "interaction has the wrong sign: gain of the combination "
                      "MINUS the sum of the single gains (negative = they fight)")
    return report(name, False, "interaction is wrong: gain_both - (gain_wd + gain_p)")
