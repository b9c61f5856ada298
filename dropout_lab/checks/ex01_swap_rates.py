"""Exercise 1 (swapping the rates, a grid of rates per layer): its checks,
references and known mistakes.

The functions are checked on a small synthetic table on which each known mistake
gives another answer than the reference: rows out of seed order, seeds that
differ, p2 mattering more than p1. No randomness: the same verdict every time.
"""
import itertools
import math
import numbers

import numpy as np
import pandas as pd

from .engine import (IGNORED_VALUE, Fail, Mistake, by_seed, check, differing, grid_problem,
                     known_mistake, mean_std, report, settings_problem, todo, with_decoy)

__all__ = ["check_rate_grid", "check_paired_differences", "check_marginal_means"]

KEEP_RATES = ("these are keep probabilities q = 1 - p: dl.sweep and this book use the "
              "DROP probability p (0.2 means drop 20 %)")
ZIPPED = ("only equal rates (p, p): you paired the rates element by element (zip); the "
          "grid is every p1 with every p2 (itertools.product)")
ONE_ORDER = ("only one order of each pair: (0.2, 0.5) and (0.5, 0.2) are different nets "
             "(p1 acts after the first hidden layer, p2 after the second); use "
             "itertools.product, not combinations")


def _rate_pairs(settings):
    """The (p1, p2) of each setting; the check fails if they are not two rates."""
    problem = settings_problem(settings, "{'dropout': (0.2, 0.5)}")
    if problem:
        raise Fail(problem)
    for s in settings:
        if "dropout" not in s:
            raise Fail(f"a setting has no 'dropout' key: {s!r}")
        d = s["dropout"]
        if len(d) != 2:
            raise Fail(f"'dropout' must hold one rate per hidden layer, (p1, p2); got {d!r}")
        if not all(isinstance(p, numbers.Real) and not isinstance(p, bool) for p in d):
            raise Fail(f"the rates must be numbers, got {d!r}")
        if not all(0 <= p <= 1 for p in d):  # also catches NaN
            raise Fail("rates must be drop probabilities in [0, 1] (0.2, not 20 per cent)")
    return [tuple(s["dropout"]) for s in settings]


@check
def check_rate_grid(settings, rates):
    """settings: the list of dl.sweep dicts; it must hold every (p1, p2) with p1 and
    p2 from `rates` (drop probabilities), both orders, each once, and otherwise
    identical settings."""
    pairs = _rate_pairs(settings)
    grid = list(itertools.product(rates, rates))
    problem = grid_problem(pairs, grid, [([(1 - a, 1 - b) for a, b in grid], KEEP_RATES)])
    # zip and combinations, whatever the rates: all pairs equal, or all in one order
    one_order = all(a <= b for a, b in pairs) or all(a >= b for a, b in pairs)
    if problem and one_order and len(rates) > 1:
        problem = ZIPPED if all(a == b for a, b in pairs) else ONE_ORDER
    problem = problem or differing(settings, ("dropout",))
    if problem:
        raise Fail(problem)
    return report("rate_grid", True, f"{len(grid)} settings = {len(rates)} rates for p1 x "
                  f"{len(rates)} for p2, both orders")


def paired_differences(final, first, second, value="test_acc"):
    """The reference: per seed, the accuracy `value` of (p1, p2) = first minus that of
    second."""
    def accuracy(pair):
        rows = final[(final.p1 == pair[0]) & (final.p2 == pair[1])]
        return rows.set_index("seed")[value]
    return (accuracy(first) - accuracy(second)).rename("difference")


def marginal_means(final, column, value="test_acc"):
    """The reference: per rate of `column`, mean and std over seeds of the seed's
    average of `value` over the other layer's rates."""
    per_seed = final.groupby([column, "seed"])[value].mean()
    return per_seed.groupby(level=column).agg(["mean", "std"])


def _synthetic_final():
    """A last-epoch table like dl.sweep's: p1 and p2 in {0, 0.2, 0.5}, seeds 3, 7, 11.
    p2 matters much more than p1, the seeds differ, each row has a fixed wobble, and
    in some settings the rows are NOT in seed order (as after a merge or a sort)."""
    seed_effect = {3: 0.010, 7: -0.004, 11: 0.002}
    rows = []
    for i, (p1, p2) in enumerate(itertools.product([0.0, 0.2, 0.5], repeat=2)):
        for seed in [11, 3, 7] if i % 3 == 1 else [3, 7, 11]:
            acc = (0.85 - 0.01 * p1 - 0.08 * p2 + 0.03 * p1 * p2 + seed_effect[seed]
                   + 0.004 * math.sin(3.7 * len(rows)))
            rows.append({"setting": i, "dropout": (p1, p2), "p1": p1, "p2": p2,
                         "seed": seed, "epoch": 10, "test_acc": acc})
    return pd.DataFrame(rows)


WRONG_DIFFERENCES = ("wrong differences: per seed, take the test accuracy of the setting "
                     "(p1, p2) = first minus that of second")
UNALIGNED = ("the mean is right but the single differences are not: subtract the two "
             "settings seed by seed (align on the seed column, e.g. set_index('seed')), "
             "not row by row in table order")


@check
def check_paired_differences(fn):
    """fn(final, first, second) -> Series indexed by seed: acc(first) - acc(second)."""
    final = _synthetic_final()
    for first, second in [((0.0, 0.5), (0.5, 0.2)), ((0.2, 0.5), (0.5, 0.2))]:
        want = paired_differences(final, first, second)
        got = by_seed(fn(final.copy(), first, second), want.index)
        if np.allclose(got, want, atol=1e-9):
            continue
        hint = known_mistake(got, DIFFERENCE_MISTAKES, lambda wrong: pd.Series(
            wrong(final.copy(), first, second)).reindex(want.index))
        if hint is None and np.isclose(got.mean(), want.mean(), atol=1e-9):
            hint = UNALIGNED  # any mix-up of the rows within a setting keeps the mean
        raise Fail(f"for first={first}, second={second}: {hint or WRONG_DIFFERENCES}")
    moved, first, second = with_decoy(final), (0.2, 0.5), (0.5, 0.2)
    want = paired_differences(moved, first, second, value="valid_acc")
    got = by_seed(fn(moved.copy(), first, second, value="valid_acc"), want.index)
    if not np.allclose(got, want, atol=1e-9):
        raise Fail(IGNORED_VALUE)
    return report("paired_differences", True, "one difference per seed, matched by seed")


def _rates(final, column="p1"):
    return sorted(final[column].unique().tolist())


def _marginal(fn, final, column):
    """{"mean": array, "std": array} of fn(final, column), one value per rate of `column`."""
    mean, std = mean_std(fn(final.copy(), column), _rates(final, column), f"{column} rate")
    return {"mean": mean, "std": std}


@check
def check_marginal_means(fn):
    """fn(final, column) -> DataFrame indexed by the rates of `column`, columns mean and
    std: per seed average over the other rate, then mean and std over seeds."""
    final = _synthetic_final()
    n_seeds = final.seed.nunique()
    for column in ("p1", "p2"):
        got, want = _marginal(fn, final, column), _marginal(marginal_means, final, column)
        ddof0 = want["std"] * math.sqrt((n_seeds - 1) / n_seeds)  # dividing by n is fine too
        mean_right = np.allclose(got["mean"], want["mean"], atol=1e-9)
        std_right = any(np.allclose(got["std"], s, atol=1e-9) for s in (want["std"], ddof0))
        if mean_right and std_right:
            continue
        # a known mistake is named by the column that is wrong, whatever the other one
        wrong = "std" if mean_right else "mean"
        hint = known_mistake(got[wrong], NAMED_MARGINAL_MISTAKES,
                             lambda mistake: _marginal(mistake, final, column)[wrong])
        raise Fail(hint or f"the {wrong} for {column} is wrong: per seed, average over the "
                   "other layer's rates; then the mean and std over seeds")
    moved = with_decoy(final)
    got = mean_std(fn(moved.copy(), "p1", value="valid_acc"), _rates(final), "p1 rate")
    if not np.allclose(got[0], marginal_means(moved, "p1", value="valid_acc")["mean"],
                       atol=1e-9):
        raise Fail(IGNORED_VALUE)
    return report("marginal_means", True, "means and seed spreads of both layers' marginal "
                  "effects")


# ---------------------------------------------------------------------------
# The known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

RATES = [0.0, 0.2, 0.5, 0.7]
GRID = list(itertools.product(RATES, RATES))


def _unaligned(final, first, second):
    """Row by row in table order, ignoring the seed column."""
    def accuracy(pair):
        return final[(final.p1 == pair[0]) & (final.p2 == pair[1])]["test_acc"].to_numpy()
    return pd.Series(accuracy(first) - accuracy(second), index=sorted(final.seed.unique()))


def _marginal_ddof0(final, column, value="test_acc"):
    """Right too: the std over seeds divided by n, not by n - 1."""
    per_seed = final.groupby([column, "seed"])[value].mean().groupby(level=column)
    return pd.DataFrame({"mean": per_seed.mean(), "std": per_seed.std(ddof=0)})


GRID_MISTAKES = [Mistake(settings, hint, (RATES,)) for settings, hint in [
    ([{"dropout": d} for d in itertools.combinations_with_replacement(RATES, 2)],
     "only one order of each pair"),
    ([{"dropout": d} for d in itertools.combinations(RATES[::-1], 2)], "only one order"),
    ([{"dropout": (a, a)} for a in RATES], "(zip)"),
    ([{"dropout": (1 - a, 1 - b)} for a, b in GRID], "keep probabilities"),
    ([{"dropout": (100 * a, 100 * b)} for a, b in GRID], "in [0, 1]"),
    ([{"dropout": d} for d in GRID][:-1], "1 of 16 settings missing"),
    ([{"dropout": d} for d in GRID] + [{"dropout": (0, 0)}], "more than once"),
    (GRID, "must be a dict"),
    ([{"dropout": a} for a in RATES], "one rate per hidden layer"),
    ([{"dropout": (a, b), "epochs": 10 if a < 0.5 else 20} for a, b in GRID],
     "differ in 'epochs'"),
    ([{"dropout": d} for d in itertools.product(RATES + [0.9], RATES)], "outside the grid"),
    (None, "list of dicts")]]

DIFFERENCE_MISTAKES = [
    Mistake(lambda f, a, b: -paired_differences(f, a, b), "the sign is reversed: return "
            "acc(first) - acc(second), with p1 the rate after the FIRST hidden layer"),
    Mistake(_unaligned, UNALIGNED),
    Mistake(lambda f, a, b: paired_differences(f, a[::-1], b[::-1]), "you read the pairs "
            "as (p2, p1): first[0] is p1, the rate after the first hidden layer"),
    Mistake(lambda f, a, b: paired_differences(f, a, b).to_numpy(), "Series indexed by seed"),
    Mistake(lambda f, a, b: paired_differences(f, a, b).reset_index(drop=True),
            "must be the seeds"),
    Mistake(lambda f, a, b: paired_differences(f, a, b) * 2, WRONG_DIFFERENCES),
    Mistake(lambda f, a, b: 1 / 0, "raised ZeroDivisionError"),
    Mistake(lambda f, a, b, value="test_acc": paired_differences(f, a, b), IGNORED_VALUE),
    Mistake(todo, "not implemented yet"),
]

NAMED_MARGINAL_MISTAKES = [  # check_marginal_means names these by their values
    Mistake(lambda f, c: f.groupby(c)["test_acc"].agg(["mean", "std"]), "your std also "
            "counts the differences between the other layer's rates: average over them "
            "within each seed first, then take the mean and std over seeds"),
    Mistake(lambda f, c: marginal_means(f, "p2" if c == "p1" else "p1"), "you grouped "
            "by the other layer's rate: group by the column you are given"),
]
MARGINAL_MISTAKES = NAMED_MARGINAL_MISTAKES + [
    Mistake(lambda f, c: _marginal_ddof0(f, "p2" if c == "p1" else "p1"),
            "group by the column"),
    Mistake(lambda f, c: f.groupby(c)["test_acc"].agg(["mean", "max"]),
            "columns 'mean' and 'std'"),
    Mistake(lambda f, c: marginal_means(f, c).sort_index(ascending=False), "increasing order"),
    Mistake(lambda f, c, value="test_acc": marginal_means(f, c), IGNORED_VALUE),
    Mistake(lambda f, c: marginal_means(f, c).assign(std=0.01), "std for p1 is wrong"),
]

MISTAKES = {"rate_grid": GRID_MISTAKES, "paired_differences": DIFFERENCE_MISTAKES,
            "marginal_means": MARGINAL_MISTAKES}
REFERENCES = {"paired_differences": paired_differences, "marginal_means": marginal_means}
# other answers that must pass: check name -> [the check's arguments]
FLOAT_RATES = np.arange(0, .75, .1)  # 0.30000000000000004 and the like
PASSES = {"rate_grid": [([{"dropout": d, "epochs": 10} for d in GRID], RATES),
                        ([{"dropout": d} for d in itertools.product(FLOAT_RATES, repeat=2)],
                         [round(0.1 * i, 1) for i in range(8)])],
          "marginal_means": [(_marginal_ddof0,)]}
