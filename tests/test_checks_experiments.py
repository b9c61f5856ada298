"""The checks of exercises 7, 9 and 10 (test-time dropout, training-set size,
width) pass the solutions and fail the classic wrong answers, each with its own hint."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from dropout_lab import checks
from dropout_lab.checks import ex07_test_time_dropout as ex07
from dropout_lab.checks import ex09_training_set_size as ex09
from dropout_lab.checks import ex10_width as ex10


def fails_with(verdict, check, *args, hint):
    passed, line = verdict(check, *args)
    assert not passed, line
    assert hint in line, line




# --- exercise 7: mc_predict ------------------------------------------------------

def mc_predict(model, X, k):
    """The notebook's solution."""
    was_training = model.training
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    with torch.no_grad():
        probs = sum(torch.softmax(model(X), dim=-1) for _ in range(k)) / k
    model.train(was_training)
    return probs


def dropout_on(model):
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()


@torch.no_grad()
def averages_logits(model, X, k):
    was = model.training
    dropout_on(model)
    out = torch.softmax(sum(model(X) for _ in range(k)) / k, dim=-1)
    model.train(was)
    return out


@torch.no_grad()
def leaves_train_mode(model, X, k):
    dropout_on(model)
    return sum(torch.softmax(model(X), dim=-1) for _ in range(k)) / k


@torch.no_grad()
def whole_model_train(model, X, k):
    was = model.training
    model.train()
    out = sum(torch.softmax(model(X), dim=-1) for _ in range(k)) / k
    model.train(was)
    return out


@torch.no_grad()
def eval_mode(model, X, k):
    model.eval()
    return sum(torch.softmax(model(X), dim=-1) for _ in range(k)) / k


@torch.no_grad()
def top_level_only(model, X, k):  # `for layer in model` misses nested dropout
    was = model.training
    model.eval()
    for layer in model:
        if isinstance(layer, nn.Dropout):
            layer.train()
    out = sum(torch.softmax(model(X), dim=-1) for _ in range(k)) / k
    model.train(was)
    return out


@torch.no_grad()
def reseeds_every_pass(model, X, k):
    was = model.training
    dropout_on(model)
    total = 0
    for _ in range(k):
        torch.manual_seed(0)
        total = total + torch.softmax(model(X), dim=-1)
    model.train(was)
    return total / k


@torch.no_grad()
def always_eval_after(model, X, k):
    dropout_on(model)
    out = sum(torch.softmax(model(X), dim=-1) for _ in range(k)) / k
    model.eval()
    return out


@torch.no_grad()
def returns_logits(model, X, k):
    was = model.training
    dropout_on(model)
    out = sum(model(X) for _ in range(k)) / k
    model.train(was)
    return out


@torch.no_grad()
def returns_every_pass(model, X, k):
    was = model.training
    dropout_on(model)
    out = torch.stack([torch.softmax(model(X), dim=-1) for _ in range(k)])
    model.train(was)
    return out


def test_mc_predict_passes_the_solution_and_the_reference(verdict):
    assert verdict(checks.check_mc_predict, mc_predict)[0]
    assert verdict(checks.check_mc_predict, ex07.mc_predict_reference)[0]


@pytest.mark.parametrize("wrong, hint", [
    (averages_logits, "averaged the logits"),
    (leaves_train_mode, "still in train mode"),
    (whole_model_train, "BatchNorm ran in train mode"),
    (eval_mode, "equals eval mode"),
    (top_level_only, "sub-modules"),
    (reseeds_every_pass, "passes are identical"),
    (always_eval_after, "restore the mode it had"),
    (returns_logits, "do not sum to 1"),
    (returns_every_pass, "average over the passes"),
])
def test_mc_predict_fails_the_classic_mistakes(wrong, hint, verdict):
    fails_with(verdict, checks.check_mc_predict, wrong, hint=hint)


def test_mc_predict_reports_a_todo(verdict):
    def todo(model, X, k):
        raise NotImplementedError("TODO")
    fails_with(verdict, checks.check_mc_predict, todo, hint="not implemented yet")


def test_mc_predict_leaves_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_mc_predict(mc_predict)
    assert torch.equal(torch.rand(3), expected)


# --- exercise 7: entropy, selective accuracy ---------------------------------------

def entropy(probs):
    return -torch.xlogy(probs, probs).sum(dim=1)


@pytest.mark.parametrize("wrong, hint", [
    (lambda P: -(P * torch.log(P)).sum(1), "NaN"),
    (lambda P: (P * torch.log(P.clamp_min(1e-12))).sum(1), "sign"),
    (lambda P: -(P * torch.log2(P.clamp_min(1e-12))).sum(1), "bits"),
    (lambda P: -(P * torch.log(P.clamp_min(1e-12))).mean(1), "MEAN"),
    (lambda P: -(P * torch.log(P.clamp_min(1e-12))).sum(0), "summed over the images"),
    (lambda P: -torch.xlogy(P, P).sum(1, keepdim=True), "keepdim"),
    (lambda P: 1 - P.max(1).values, "1 - max probability"),
])
def test_entropy(wrong, hint, verdict):
    assert verdict(checks.check_entropy, entropy)[0]
    fails_with(verdict, checks.check_entropy, wrong, hint=hint)


def selective_accuracy(uncertainty, correct, coverage):
    keep = round(coverage * len(uncertainty))
    order = torch.argsort(uncertainty)[:keep]
    return correct[order].float().mean().item()


def most_uncertain(uncertainty, correct, coverage):
    keep = round(coverage * len(uncertainty))
    return correct[torch.argsort(uncertainty, descending=True)[:keep]].float().mean().item()


def ignores_coverage(uncertainty, correct, coverage):
    return correct.float().mean().item()


def divides_by_all(uncertainty, correct, coverage):
    keep = round(coverage * len(uncertainty))
    return correct[torch.argsort(uncertainty)[:keep]].float().sum().item() / len(correct)


def counts(uncertainty, correct, coverage):
    keep = round(coverage * len(uncertainty))
    return correct[torch.argsort(uncertainty)[:keep]].sum().item()


@pytest.mark.parametrize("wrong, hint", [
    (most_uncertain, "MOST uncertain"), (ignores_coverage, "accuracy on all images"),
    (divides_by_all, "number of ALL images"), (counts, "is a count"),
])
def test_selective_accuracy(wrong, hint, verdict):
    assert verdict(checks.check_selective_accuracy, selective_accuracy)[0]
    fails_with(verdict, checks.check_selective_accuracy, wrong, hint=hint)


# --- exercise 9: size settings, dropout gain ---------------------------------------

SIZES = [250, 500, 1000]
EPOCHS = {250: 40, 500: 20, 1000: 10}
COMMON = {"batch_size": 64}


def size_settings(sizes=SIZES):
    return [{"dropout": d, "n_train": n, "epochs": EPOCHS[n], **COMMON}
            for n in sizes for d in [(0.0, 0.0), (0.5, 0.5)]]


def test_size_settings_pass(verdict):
    assert verdict(checks.check_size_settings, size_settings(), SIZES)[0]
    assert verdict(checks.check_size_settings, size_settings(), SIZES, EPOCHS)[0]


@pytest.mark.parametrize("settings, hint", [
    ([{"dropout": d, "epochs": 10} for n in SIZES for d in [(0.0, 0.0), (0.5, 0.5)]],
     "no 'n_train'"),
    ([{"dropout": d, "n": n} for n in SIZES for d in [(0.0, 0.0), (0.5, 0.5)]],
     "does not know the key"),
    ([{"dropout": d, "n_train": n / 60000} for n in SIZES for d in [(0.0, 0.0), (0.5, 0.5)]],
     "fraction"),
    ([{"dropout": d, "n_train": n} for n in SIZES for d in [(1.0, 1.0), (0.5, 0.5)]],
     "DROP probability"),
    ([{"dropout": (0.5, 0.5), "n_train": n} for n in SIZES], "WITHOUT dropout"),
    ([{"dropout": (0.0, 0.0), "n_train": n} for n in SIZES], "WITH dropout"),
    ([{"dropout": 0.5, "n_train": n} for n in SIZES], "must be a tuple"),
    ([{"dropout": d, "n_train": n, "epochs": 10 if d[0] else 20}
      for n in SIZES for d in [(0.0, 0.0), (0.5, 0.5)]], "differ in more than the dropout"),
    (size_settings() + size_settings()[:1], "appear twice"),
    ({"dropout": (0.5, 0.5), "n_train": 500}, "list of dicts"),
])
def test_size_settings_fail(settings, hint, verdict):
    fails_with(verdict, checks.check_size_settings, settings, SIZES, hint=hint)


def test_size_settings_epochs(verdict):
    fixed = [{"dropout": d, "n_train": n, "epochs": 10}
             for n in SIZES for d in [(0.0, 0.0), (0.5, 0.5)]]
    fails_with(verdict, checks.check_size_settings, fixed, SIZES, EPOCHS, hint="EPOCHS[n]")
    default = [{"dropout": d, "n_train": n} for n in SIZES for d in [(0.0, 0.0), (0.5, 0.5)]]
    fails_with(verdict, checks.check_size_settings, default, SIZES, EPOCHS, hint="used 10")


def dropout_gain(final, value="test_acc"):
    with_dropout = final[final.p1 > 0].set_index(["n_train", "seed"])[value]
    without = final[final.p1 == 0].set_index(["n_train", "seed"])[value]
    return (with_dropout - without).groupby(level="n_train").agg(["mean", "std"])


def gain_reversed(final, value="test_acc"):
    return -dropout_gain(final, value).assign(std=dropout_gain(final, value)["std"])


def gain_test_only(final, value="test_acc"):
    return dropout_gain(final, "test_acc")


def gain_unpaired(final, value="test_acc"):
    stats = final.groupby(["n_train", "p1"])[value].agg(["mean", "var"]).unstack("p1")
    return pd_frame(stats["mean"][0.5] - stats["mean"][0.0],
                    np.sqrt(stats["var"][0.5] + stats["var"][0.0]))


def gain_row_order(final, value="test_acc"):
    rows = []
    for n, group in final.groupby("n_train"):
        a = group[group.p1 > 0][value].to_numpy()
        b = group[group.p1 == 0][value].to_numpy()
        rows.append((n, (a - b).mean(), (a - b).std(ddof=1)))
    return pd_frame(*[list(c) for c in zip(*rows)][1:], index=[r[0] for r in rows])


def pd_frame(mean, std, index=None):
    import pandas as pd
    return pd.DataFrame({"mean": mean, "std": std}, index=index)


@pytest.mark.parametrize("wrong, hint", [
    (gain_reversed, "sign is reversed"), (gain_test_only, "argument `value`"),
    (gain_unpaired, "as if independent"), (gain_row_order, "not row by row"),
])
def test_dropout_gain(wrong, hint, verdict):
    assert verdict(checks.check_dropout_gain, dropout_gain)[0]
    assert verdict(checks.check_dropout_gain, ex09.dropout_gain_reference)[0]
    fails_with(verdict, checks.check_dropout_gain, wrong, hint=hint)


# --- exercise 10: width settings, n/q comparison -----------------------------------

WIDTHS, RATES = [32, 64, 128], [0.0, 0.2, 0.5]
WCOMMON = {"n_train": 5000, "epochs": 15}


def width_settings():
    return [{"hidden": (w, w), "dropout": (p, p), **WCOMMON}
            for w, p in itertools.product(WIDTHS, RATES)]


def test_width_settings_pass(verdict):
    assert verdict(checks.check_width_settings, width_settings(), WIDTHS, RATES)[0]


@pytest.mark.parametrize("settings, hint", [
    ([{"hidden": (w,), "dropout": (p,)} for w, p in itertools.product(WIDTHS, RATES)],
     "ONE hidden layer"),
    ([{"hidden": w, "dropout": (p, p)} for w, p in itertools.product(WIDTHS, RATES)],
     "as a tuple"),
    ([{"hidden": (w, w), "dropout": (1 - p, 1 - p)} for w, p in itertools.product(WIDTHS, RATES)],
     "keep probabilities"),
    ([{"hidden": (w, w), "dropout": (p, p)} for w, p in zip(WIDTHS, RATES)], "zip"),
    ([{"hidden": (w, w), "dropout": (p, p), "epochs": 5 if p else 10}
      for w, p in itertools.product(WIDTHS, RATES)], "differ in more"),
    (width_settings()[:-1], "missing"),
    (width_settings() + width_settings()[:1], "more than once"),
    ([{"hidden": (w, w), "dropout": (p, 0.5)} for w, p in itertools.product(WIDTHS, RATES)],
     "the same rate after both"),
])
def test_width_settings_fail(settings, hint, verdict):
    fails_with(verdict, checks.check_width_settings, settings, WIDTHS, RATES, hint=hint)


def nq_gain(final, n, q):
    def accuracy(width, p):
        rows = final[(final.width == width) & np.isclose(final.p1, p)]
        return rows.set_index("seed")["test_acc"]
    return accuracy(round(n / q), 1 - q) - accuracy(n, 0.0)


def nq_exact_float(final, n, q):
    def accuracy(width, p):
        return final[(final.width == width) & (final.p1 == p)].set_index("seed")["test_acc"]
    return accuracy(n / q, 1 - q) - accuracy(n, 0.0)


def nq_times_q(final, n, q):
    def accuracy(width, p):
        rows = final[(final.width == width) & np.isclose(final.p1, p)]
        return rows.set_index("seed")["test_acc"]
    return accuracy(round(n * q), 1 - q) - accuracy(n, 0.0)


def nq_keep_as_drop(final, n, q):
    def accuracy(width, p):
        rows = final[(final.width == width) & np.isclose(final.p1, p)]
        return rows.set_index("seed")["test_acc"]
    return accuracy(round(n / q), q) - accuracy(n, 0.0)


def nq_row_order(final, n, q):
    a = final[(final.width == round(n / q)) & np.isclose(final.p1, 1 - q)]
    b = final[(final.width == n) & (final.p1 == 0)]
    return a["test_acc"].reset_index(drop=True).set_axis(sorted(a.seed)) - \
        b["test_acc"].reset_index(drop=True).set_axis(sorted(b.seed))


@pytest.mark.parametrize("wrong, hint", [
    (nq_exact_float, "floating point"), (nq_times_q, "n·q"), (nq_keep_as_drop, "KEEP"),
    (lambda f, n, q: -nq_gain(f, n, q), "sign is reversed"), (nq_row_order, "seed by seed"),
])
def test_nq_gain(wrong, hint, verdict):
    assert verdict(checks.check_nq_gain, nq_gain)[0]
    assert verdict(checks.check_nq_gain, ex10.nq_gain_reference)[0]
    fails_with(verdict, checks.check_nq_gain, wrong, hint=hint)
