"""The checks of exercises 1-2 (dropout rates, more epochs) pass the solutions and
fail the classic wrong answers, each with its own hint."""
import itertools

import numpy as np
import pandas as pd
import pytest

from dropout_lab import checks

RATES = [0.0, 0.2, 0.5, 0.7]
COMMON = {"epochs": 10, "n_train": 5000}




# --- the solutions, as written in the notebooks --------------------------------

def grid_solution(rates_):
    return [{"dropout": (p1, p2), **COMMON} for p1, p2 in itertools.product(rates_, rates_)]


def paired_differences(final, first, second):
    def accuracy(pair):
        rows = final[(final.p1 == pair[0]) & (final.p2 == pair[1])]
        return rows.set_index("seed")["test_acc"]
    return accuracy(first) - accuracy(second)


def marginal_means(final, column):
    per_seed = final.groupby([column, "seed"])["test_acc"].mean()
    return per_seed.groupby(level=column).agg(["mean", "std"])


def overfitting_onset(history):
    return int(history.loc[history["test_loss"].idxmin(), "epoch"])


def epochs_to_reach(curve, target):
    reached = curve[curve["test_acc"] >= target]
    return None if reached.empty else int(reached["epoch"].iloc[0])


# --- rate grid ---------------------------------------------------------------------

def test_rate_grid_passes_the_solution_and_the_full_grid(verdict):
    assert verdict(checks.check_rate_grid, grid_solution(RATES), RATES)[0]
    full = [round(0.1 * i, 1) for i in range(8)]
    assert verdict(checks.check_rate_grid, grid_solution(full), full)[0]
    # float round-off from np.arange must not matter
    assert verdict(checks.check_rate_grid,
                   grid_solution(list(np.arange(0, 0.75, 0.1))), full)[0]


@pytest.mark.parametrize("settings, hint", [
    ([{"dropout": (a, b)} for a, b in itertools.combinations_with_replacement(RATES, 2)],
     "only one order of each pair"),
    ([{"dropout": (a, a)} for a in RATES], "(zip)"),
    ([{"dropout": (1 - a, 1 - b)} for a, b in itertools.product(RATES, RATES)],
     "keep probabilities"),
    ([{"dropout": (100 * a, 100 * b)} for a, b in itertools.product(RATES, RATES)],
     "in [0, 1]"),
    ([{"dropout": (a, b)} for a, b in itertools.product(RATES, RATES)][:-1],
     "1 of 16 settings missing"),
    ([{"dropout": (a, b)} for a, b in itertools.product(RATES, RATES)] + [{"dropout": (0, 0)}],
     "more than once"),
    ([(a, b) for a, b in itertools.product(RATES, RATES)], "must be a dict"),
    ([{"dropout": a} for a in RATES], "one rate per hidden layer"),
    ([{"dropout": (a, b), "epochs": 10 if a < 0.5 else 20}
      for a, b in itertools.product(RATES, RATES)], "differ in more than the dropout"),
    ([{"dropout": (a, b)} for a, b in itertools.product(RATES + [0.9], RATES)],
     "outside the grid"),
    (None, "list of dicts"),
])
def test_rate_grid_fails_wrong_grids_with_a_hint(settings, hint, verdict):
    passed, line = verdict(checks.check_rate_grid, settings, RATES)
    assert not passed and hint in line, line


# --- paired differences ----------------------------------------------------------------

def test_paired_differences_passes_the_solution(verdict):
    assert verdict(checks.check_paired_differences, paired_differences)[0]


def unaligned(final, first, second):  # row by row, ignoring the seed column
    a = final[(final.p1 == first[0]) & (final.p2 == first[1])]["test_acc"].to_numpy()
    b = final[(final.p1 == second[0]) & (final.p2 == second[1])]["test_acc"].to_numpy()
    return pd.Series(a - b, index=sorted(final.seed.unique()))


@pytest.mark.parametrize("fn, hint", [
    (lambda f, a, b: -paired_differences(f, a, b), "sign is reversed"),
    (unaligned, "seed by seed"),
    (lambda f, a, b: paired_differences(f, a[::-1], b[::-1]), "(p2, p1)"),
    (lambda f, a, b: paired_differences(f, a, b).to_numpy(), "Series indexed by seed"),
    (lambda f, a, b: paired_differences(f, a, b).reset_index(drop=True), "must be the seeds"),
    (lambda f, a, b: paired_differences(f, a, b) * 2, "wrong differences"),
    (lambda f, a, b: 1 / 0, "raised ZeroDivisionError"),
])
def test_paired_differences_fails_classic_mistakes(fn, hint, verdict):
    passed, line = verdict(checks.check_paired_differences, fn)
    assert not passed and hint in line, line


def test_paired_differences_todo_is_reported(verdict):
    def todo(final, first, second):
        raise NotImplementedError("TODO")
    passed, line = verdict(checks.check_paired_differences, todo)
    assert not passed and "not implemented yet" in line


# --- marginal means ---------------------------------------------------------------------

def test_marginal_means_passes_the_solution_and_ddof0(verdict):
    assert verdict(checks.check_marginal_means, marginal_means)[0]

    def ddof0(final, column):
        per_seed = final.groupby([column, "seed"])["test_acc"].mean()
        return per_seed.groupby(level=column).agg(["mean", lambda s: s.std(ddof=0)]) \
            .set_axis(["mean", "std"], axis=1)
    assert verdict(checks.check_marginal_means, ddof0)[0]


@pytest.mark.parametrize("fn, hint", [
    (lambda f, c: f.groupby(c)["test_acc"].agg(["mean", "std"]), "within each seed first"),
    (lambda f, c: marginal_means(f, "p2" if c == "p1" else "p1"), "group by the column"),
    (lambda f, c: f.groupby(c)["test_acc"].agg(["mean", "max"]), "columns 'mean' and 'std'"),
    (lambda f, c: marginal_means(f, c).sort_index(ascending=False), "increasing order"),
    (lambda f, c: marginal_means(f, c).assign(std=0.01), "std for p1 is wrong"),
])
def test_marginal_means_fails_classic_mistakes(fn, hint, verdict):
    passed, line = verdict(checks.check_marginal_means, fn)
    assert not passed and hint in line, line


# --- overfitting onset ----------------------------------------------------------------

def test_overfitting_onset_passes_the_solution(verdict):
    assert verdict(checks.check_overfitting_onset, overfitting_onset)[0]


@pytest.mark.parametrize("fn, hint", [
    (lambda h: int(h["train_acc"].to_numpy().argmax()) + 1, "TRAIN accuracy peaks"),
    (lambda h: int(h.loc[h["test_acc"].idxmax(), "epoch"]), "test accuracy peaks"),
    (lambda h: int(h["test_loss"].to_numpy().argmin()), "off by one"),
    (lambda h: int(h["test_loss"].idxmin()), "row label"),
    (lambda h: h["test_loss"].min(), "smallest loss, not its epoch"),
    # "the first epoch after which the loss rises": right until the loss never rises
    (lambda h: int(h.epoch.iloc[int(np.argmax(np.diff(h.test_loss.to_numpy()) > 0))]),
     "no overfitting seen yet"),
])
def test_overfitting_onset_fails_classic_mistakes(fn, hint, verdict):
    passed, line = verdict(checks.check_overfitting_onset, fn)
    assert not passed and hint in line, line


# --- epochs to reach ------------------------------------------------------------------------

def test_epochs_to_reach_passes_the_solution(verdict):
    assert verdict(checks.check_epochs_to_reach, epochs_to_reach)[0]


def strict(curve, target):
    reached = curve[curve["test_acc"] > target]
    return None if reached.empty else int(reached["epoch"].iloc[0])


@pytest.mark.parametrize("fn, hint", [
    (lambda c, t: int(np.argmax(c["test_acc"].to_numpy() >= t)), "off by one"),
    (lambda c, t: int(c.index[c["test_acc"] >= t][0]), "row label"),
    (strict, "not > target"),
    (lambda c, t: int(c["epoch"][c["test_acc"] >= t].max()), "LAST epoch"),
    (lambda c, t: int(c.loc[c["test_acc"].idxmax(), "epoch"]), "best accuracy"),
    (lambda c, t: epochs_to_reach(c, t) or -1, "return None"),
    (lambda c, t: epochs_to_reach(c, t) or len(c) + 1, "return None"),
    (lambda c, t: int((c["test_acc"] < t).sum()) + 1, "first epoch whose test_acc >= target"),
])
def test_epochs_to_reach_fails_classic_mistakes(fn, hint, verdict):
    passed, line = verdict(checks.check_epochs_to_reach, fn)
    assert not passed and hint in line, line
