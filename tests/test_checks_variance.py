"""The checks of exercises 3 (activation variance) and 4 (weight decay and dropout)
pass on the reference solutions and fail, with the expected hint, on the classic
wrong answers."""
import itertools

import pandas as pd
import pytest
import torch

from dropout_lab.checks import ex03_activation_variance as ex03
from dropout_lab.checks import ex04_weight_decay as ex04


# ------------------------------------------------------------ exercise 3: formula


def test_variance_prediction_passes_on_the_reference(verdict):
    passed, line = verdict(ex03.check_variance_prediction, ex03.reference_variance_prediction)
    assert passed, line


def test_variance_prediction_accepts_the_unbiased_variance(verdict):
    def unbiased(h, p):
        return h.var(0) + p / (1 - p) * (h ** 2).mean(0)
    assert verdict(ex03.check_variance_prediction, unbiased)[0]


def not_implemented(*args):
    raise NotImplementedError("TODO")


def var(h):
    return h.var(0, unbiased=False)


def msq(h):
    return (h ** 2).mean(0)


WRONG_PREDICTIONS = {
    "p/(1-p)·Var": (lambda h, p: var(h) + p / (1 - p) * var(h), "p/(1-p)·Var[h]"),
    "p·E": (lambda h, p: var(h) + p * msq(h), "not p"),
    "(1-p)/p": (lambda h, p: var(h) + (1 - p) / max(p, 1e-12) * msq(h), "not (1-p)/p"),
    "E[h]^2": (lambda h, p: var(h) + p / (1 - p) * h.mean(0) ** 2, "square of the mean"),
    "no Var": (lambda h, p: p / (1 - p) * msq(h), "add Var[h]"),
    "second moment": (lambda h, p: msq(h) / (1 - p), "second moment"),
    "dim 1": (lambda h, p: h.var(1) + p / (1 - p) * (h ** 2).mean(1), "over units"),
    "pooled": (lambda h, p: h.var() + p / (1 - p) * (h ** 2).mean(), "one number"),
    "monte carlo": (lambda h, p: (h * (torch.rand_like(h) >= p) / (1 - p)).var(0),
                    "Monte Carlo"),
    "ddof dim 1": (lambda h, p: h.var(1) + p, "over units"),
    "todo": (not_implemented, "not implemented yet"),
}


@pytest.mark.parametrize("mistake", WRONG_PREDICTIONS)
def test_variance_prediction_fails_with_a_hint(mistake, verdict):
    fn, hint = WRONG_PREDICTIONS[mistake]
    passed, line = verdict(ex03.check_variance_prediction, fn)
    assert not passed
    assert hint in line, line


# ------------------------------------------------------- exercise 3: the hooks


def test_collect_activations_passes_on_the_reference(verdict):
    passed, line = verdict(ex03.check_collect_activations, ex03.reference_collect_activations)
    assert passed, line


def hooked(model, X, train, kinds=(torch.nn.ReLU, torch.nn.Dropout), use_input=False,
           set_mode=True, restore=True, remove=True, no_grad=True, store=None):
    """A configurable version of the solution, to make the classic mistakes."""
    captured = [] if store is None else store
    handles = []

    def keep(module, inputs, output):
        captured.append((inputs[0] if use_input and isinstance(module, torch.nn.Dropout)
                         else output).detach() if no_grad else
                        (inputs[0] if use_input else output))

    for m in model.modules():
        if isinstance(m, kinds):
            handles.append(m.register_forward_hook(keep))
    was = model.training
    if set_mode:
        model.train(train)
    if no_grad:
        with torch.no_grad():
            model(X)
    else:
        model(X)
    if restore:
        model.train(was)
    if remove:
        for h in handles:
            h.remove()
    return list(zip(captured[0::2], captured[1::2]))


GLOBAL_STORE = []

WRONG_COLLECTORS = {
    "no eval": (lambda m, X, t: hooked(m, X, t, set_mode=False), "model.eval()"),
    "no train": (lambda m, X, t: hooked(m, X, t, set_mode=False) if t else
                 hooked(m, X, t), "model.train()"),
    "mode not restored": (lambda m, X, t: hooked(m, X, t, restore=False), "restore"),
    "hooks left": (lambda m, X, t: hooked(m, X, t, remove=False), "handle.remove()"),
    "Linear hooked": (lambda m, X, t: hooked(m, X, t, kinds=(torch.nn.Linear,
                                                            torch.nn.Dropout)),
                      "not the Linear"),
    "dropout input": (lambda m, X, t: hooked(m, X, t, use_input=True), "OUTPUT"),
    "swapped": (lambda m, X, t: [(b, a) for a, b in hooked(m, X, t)], "swapped"),
    "global list": (lambda m, X, t: hooked(m, X, t, store=GLOBAL_STORE), "between calls"),
    "graph kept": (lambda m, X, t: hooked(m, X, t, no_grad=False), "autograd graph"),
    "todo": (not_implemented, "not implemented yet"),
}


@pytest.mark.parametrize("mistake", WRONG_COLLECTORS)
def test_collect_activations_fails_with_a_hint(mistake, verdict):
    GLOBAL_STORE.clear()
    fn, hint = WRONG_COLLECTORS[mistake]
    passed, line = verdict(ex03.check_collect_activations, fn)
    assert not passed
    assert hint in line, line


# ----------------------------------------------------------- exercise 4: grid

WDS, PS = [0.0, 1e-4, 1e-3, 3e-3], [0.0, 0.2, 0.5]


def grid(**extra):
    return [{"weight_decay": wd, "dropout": (p, p), **extra}
            for wd, p in itertools.product(WDS, PS)]


def test_wd_grid_passes_on_the_solution(verdict):
    passed, line = verdict(ex04.check_wd_grid, grid(n_train=10000, epochs=10), WDS, PS)
    assert passed, line
    assert "12 settings" in line


WRONG_GRIDS = {
    "zip": ([{"weight_decay": wd, "dropout": (p, p)} for wd, p in zip(WDS, PS)], "zip"),
    "keep": ([{"weight_decay": wd, "dropout": (1 - p, 1 - p)}
              for wd, p in itertools.product(WDS, PS)], "KEEP"),
    "float": ([{"weight_decay": wd, "dropout": p}
               for wd, p in itertools.product(WDS, PS)], "one rate per hidden layer"),
    "one layer": ([{"weight_decay": wd, "dropout": (p, 0.0)}
                   for wd, p in itertools.product(WDS, PS)], "same p in both"),
    "wd key": ([{"wd": wd, "dropout": (p, p)}
                for wd, p in itertools.product(WDS, PS)], "weight_decay"),
    "missing": (grid()[:-1], "missing"),
    "duplicate": (grid() + grid()[:1], "duplicate"),
    "unfair": (grid(epochs=10)[:-1] + [{**grid()[-1], "epochs": 20}], "differ in 'epochs'"),
    "none": (None, "None"),
    "dict": ({"weight_decay": WDS, "dropout": PS}, "list of dicts"),
}


@pytest.mark.parametrize("mistake", WRONG_GRIDS)
def test_wd_grid_fails_with_a_hint(mistake, verdict):
    settings, hint = WRONG_GRIDS[mistake]
    passed, line = verdict(ex04.check_wd_grid, settings, WDS, PS)
    assert not passed
    assert hint in line, line


# ---------------------------------------------------- exercise 4: interaction


def test_interaction_passes_on_the_reference(verdict):
    passed, line = verdict(ex04.check_interaction, ex04.reference_interaction)
    assert passed, line


def test_reference_interaction_recovers_a_known_interaction():
    final = ex04.synthetic_final()
    out = ex04.reference_interaction(final)
    mean = out.groupby(["weight_decay", "p1"]).interaction.mean()
    # the synthetic table has interaction -2·wd·p plus per-model noise of std 0.002
    for (wd, p), value in mean.items():
        assert abs(value - (-2.0 * wd * p)) < 0.006


def unpaired(final):
    out = ex04.reference_interaction(final)
    base = final[(final.weight_decay == 0) & (final.p1 == 0)].test_acc.mean()
    acc = final.set_index(["weight_decay", "p1", "seed"]).test_acc
    for i, r in out.iterrows():
        s = r.seed
        out.loc[i, "gain_wd"] = acc[(r.weight_decay, 0.0, s)] - base
        out.loc[i, "gain_p"] = acc[(0.0, r.p1, s)] - base
        out.loc[i, "gain_both"] = acc[(r.weight_decay, r.p1, s)] - base
    out["interaction"] = out.gain_both - out.gain_wd - out.gain_p
    return out


def edit(**changes):
    def fn(final):
        out = ex04.reference_interaction(final)
        for col, f in changes.items():
            out[col] = f(out)
        return out
    return fn


def with_zero_rows(final):
    out = ex04.reference_interaction(final)
    extra = final[(final.weight_decay == 0) | (final.p1 == 0)][["weight_decay", "p1", "seed"]]
    extra = extra.assign(gain_wd=0.0, gain_p=0.0, gain_both=0.0, interaction=0.0)
    return pd.concat([out, extra], ignore_index=True)


def raw_accuracy(final):
    out = ex04.reference_interaction(final)
    acc = final.set_index(["weight_decay", "p1", "seed"]).test_acc
    out["gain_both"] = [acc[k] for k in zip(out.weight_decay, out.p1, out.seed)]
    out["interaction"] = out.gain_both - out.gain_wd - out.gain_p
    return out


def mutating(final):
    final["test_acc"] = final["test_acc"].round(2)
    return ex04.reference_interaction(final)


WRONG_INTERACTIONS = {
    "sign": (edit(interaction=lambda o: -o.interaction), "wrong sign"),
    "swapped": (edit(gain_wd=lambda o: o.gain_p, gain_p=lambda o: o.gain_wd), "swapped"),
    "gain sign": (edit(gain_wd=lambda o: -o.gain_wd), "wrong sign"),
    "unpaired": (unpaired, "SAME seed"),
    "raw accuracy": (raw_accuracy, "accuracy itself"),
    "zero rows": (with_zero_rows, "leave out"),
    "no seed": (lambda f: ex04.reference_interaction(f).groupby(["weight_decay", "p1"],
                                                              as_index=False).mean()
                .drop(columns="seed"), "per seed"),
    "not a frame": (lambda f: ex04.reference_interaction(f).to_dict(), "DataFrame"),
    "mutates": (mutating, "changed the table"),
    "todo": (not_implemented, "not implemented yet"),
}


@pytest.mark.parametrize("mistake", WRONG_INTERACTIONS)
def test_interaction_fails_with_a_hint(mistake, verdict):
    fn, hint = WRONG_INTERACTIONS[mistake]
    passed, line = verdict(ex04.check_interaction, fn)
    assert not passed
    assert hint in line, line


