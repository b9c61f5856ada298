"""Exercise 1 (swapping the rates, a grid of rates per layer): its checks,
references and known mistakes.

The functions are checked on a small synthetic table, built so that each known
mistake (MISTAKES, run on the same table) gives a different answer from the
reference: rows out of seed order, seeds that differ, p2 mattering more than
p1. No randomness: a check gives the same verdict every time.
"""
import itertools
import math
import numbers

import numpy as np
import pandas as pd

from .engine import (Mistake, by_seed, check, differing, known_mistake,
                     mean_std, repeated, report, settings_problem)

__all__ = ["check_rate_grid", "check_paired_differences", "check_marginal_means"]


def _key(pair):
    """A pair of rates as a hashable key that ignores float round-off (0.1 + 0.2)."""
    return tuple(round(float(p), 6) for p in pair)


def _fmt(pairs, limit=4):
    pairs = sorted(pairs)
    text = ", ".join(f"({a:g}, {b:g})" for a, b in pairs[:limit])
    return text + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")


def _grid_pairs(settings):
    """The list of (p1, p2) pairs in `settings`, or a hint about its form."""
    problem = settings_problem(settings, "{'dropout': (0.2, 0.5)}")
    if problem:
        return None, problem
    pairs = []
    for s in settings:
        if "dropout" not in s:
            return None, f"a setting has no 'dropout' key: {s!r}"
        d = s["dropout"]
        if len(d) != 2:
            return None, f"'dropout' must hold one rate per hidden layer, (p1, p2); got {d!r}"
        if not all(isinstance(p, numbers.Real) and not isinstance(p, bool) for p in d):
            return None, f"the rates must be numbers, got {d!r}"
        pairs.append((float(d[0]), float(d[1])))
    return pairs, None


@check
def check_rate_grid(settings, rates):
    """settings: the list of dl.sweep dicts; it must hold every (p1, p2) with p1 and
    p2 from `rates` (drop probabilities), both orders, each once, and otherwise
    identical settings."""
    name = "rate grid"
    pairs, problem = _grid_pairs(settings)
    if problem:
        return report(name, False, problem)
    rates = [float(r) for r in rates]
    if any(not 0 <= p <= 1 or math.isnan(p) for pair in pairs for p in pair):
        return report(name, False, "rates must be drop probabilities in [0, 1] "
                      "(0.2, not 20 per cent)")
    want = {_key(pair) for pair in itertools.product(rates, rates)}
    got = [_key(pair) for pair in pairs]
    seen = set(got)
    keep = {_key((1 - a, 1 - b)) for a, b in itertools.product(rates, rates)}
    if seen == keep and keep != want:
        return report(name, False, "these are keep probabilities q = 1 - p: dl.sweep "
                      "and this book use the DROP probability p (0.2 means drop 20 %)")
    if repeated(got):
        return report(name, False, f"some settings appear more than once: "
                      f"{_fmt(repeated(got))}")
    missing, extra = want - seen, seen - want
    if not missing and not extra:
        problem = differing(settings, ("dropout",))
        if problem:
            return report(name, False, problem)
        return report(name, True, f"{len(want)} settings = {len(rates)} rates for p1 x "
                      f"{len(rates)} for p2, both orders")
    if extra and not missing:
        return report(name, False, f"settings outside the grid of `rates`: {_fmt(extra)}")
    if all(a == b for a, b in seen) and len(rates) > 1:
        return report(name, False, "only equal rates (p, p): you paired the rates element "
                      "by element (zip); the grid is every p1 with every p2 "
                      "(itertools.product)")
    if all(a <= b for a, b in seen) or all(a >= b for a, b in seen):
        return report(name, False, f"only one order of each pair, e.g. "
                      f"{_fmt(list(missing)[:1])} is missing: (0.2, 0.5) and (0.5, 0.2) "
                      "are different nets (p1 acts after the first hidden layer, p2 after "
                      "the second); use itertools.product, not combinations")
    return report(name, False, f"{len(missing)} of {len(want)} settings missing "
                  f"({_fmt(missing)})" + (f"; extra: {_fmt(extra)}" if extra else ""))


def paired_differences(final, first, second):
    """The reference: per seed, test accuracy of (p1, p2) = first minus that of second."""
    def accuracy(pair):
        rows = final[(final.p1 == pair[0]) & (final.p2 == pair[1])]
        return rows.set_index("seed")["test_acc"]
    return (accuracy(first) - accuracy(second)).rename("difference")


def marginal_means(final, column):
    """The reference: per rate of `column`, mean and std over seeds of the seed's
    average over the other layer's rates."""
    per_seed = final.groupby([column, "seed"])["test_acc"].mean()
    return per_seed.groupby(level=column).agg(["mean", "std"])


def _synthetic_final():
    """A last-epoch table like dl.sweep's: p1 and p2 in {0, 0.2, 0.5}, seeds 3, 7, 11.
    p2 matters much more than p1, the seeds differ, and in some settings the rows
    are NOT in seed order (as after a merge or a sort)."""
    rates = [0.0, 0.2, 0.5]
    seed_effect = {3: 0.010, 7: -0.004, 11: 0.002}
    wobble = [0.0031, -0.0017, 0.0009, -0.0042, 0.0026, 0.0013, -0.0008, 0.0035, -0.0021,
              0.0004]
    rows = []
    for i, (p1, p2) in enumerate(itertools.product(rates, rates)):
        seeds = [11, 3, 7] if i % 3 == 1 else [3, 7, 11]
        for j, seed in enumerate(seeds):
            acc = (0.85 - 0.01 * p1 - 0.08 * p2 + 0.03 * p1 * p2 + seed_effect[seed]
                   + wobble[(3 * i + j) % len(wobble)])
            rows.append({"setting": i, "dropout": (p1, p2), "p1": p1, "p2": p2,
                         "seed": seed, "epoch": 10, "test_acc": acc})
    return pd.DataFrame(rows)


WRONG_DIFFERENCES = ("wrong differences: per seed, take the test accuracy of the setting "
                     "(p1, p2) = first minus that of second")


@check
def check_paired_differences(fn):
    """fn(final, first, second) -> Series indexed by seed: acc(first) - acc(second)."""
    name = "paired differences"
    final = _synthetic_final()
    for first, second in [((0.0, 0.5), (0.5, 0.2)), ((0.2, 0.5), (0.5, 0.2))]:
        want = paired_differences(final, first, second)
        got = by_seed(fn(final.copy(), first, second), want.index)
        if np.allclose(got, want, atol=1e-9):
            continue
        hint = known_mistake(got, DIFFERENCE_MISTAKES, lambda wrong: pd.Series(
            wrong(final.copy(), first, second)).reindex(want.index))
        if hint is None and np.isclose(got.mean(), want.mean(), atol=1e-9):
            hint = DIFFERENCE_MISTAKES[1].hint
        return report(name, False, f"for first={first}, second={second}: "
                      f"{hint or WRONG_DIFFERENCES}")
    return report(name, True, "one difference per seed, matched by seed")


@check
def check_marginal_means(fn):
    """fn(final, column) -> DataFrame indexed by the rates of `column`, columns mean and
    std: per seed average over the other rate, then mean and std over seeds."""
    name = "marginal means"
    final = _synthetic_final()
    for column in ("p1", "p2"):
        want = marginal_means(final, column)
        mean, std = mean_std(fn(final.copy(), column), want.index, f"rate of {column}")
        if not np.allclose(mean, want["mean"], atol=1e-9):
            other = "p2" if column == "p1" else "p1"
            if np.allclose(mean, marginal_means(final, other)["mean"], atol=1e-9):
                return report(name, False, f"for column={column!r} you averaged over "
                              f"{column} and kept {other}: group by the column you are given")
            return report(name, False, f"the means for {column} are wrong: average the test "
                          "accuracy over the other layer's rates and the seeds")
        if np.allclose(std, final.groupby(column)["test_acc"].std(), atol=1e-9):
            return report(name, False, "your std also counts the differences between the "
                          "other layer's rates: average over them within each seed first, "
                          "then take the mean and std over seeds")
        ddof0 = want["std"] * math.sqrt((final.seed.nunique() - 1) / final.seed.nunique())
        if not (np.allclose(std, want["std"], atol=1e-9) or np.allclose(std, ddof0, atol=1e-9)):
            return report(name, False, f"the std for {column} is wrong: per seed, average "
                          "over the other rate; then the std over seeds")
    return report(name, True, "means and seed spreads of both layers' marginal effects")


# ---------------------------------------------------------------------------
# The known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

RATES = [0.0, 0.2, 0.5, 0.7]
GRID = list(itertools.product(RATES, RATES))


def _todo(*args):
    raise NotImplementedError("TODO")


def _unaligned(final, first, second):
    """Row by row in table order, ignoring the seed column."""
    def accuracy(pair):
        return final[(final.p1 == pair[0]) & (final.p2 == pair[1])]["test_acc"].to_numpy()
    return pd.Series(accuracy(first) - accuracy(second), index=sorted(final.seed.unique()))


def _marginal_ddof0(final, column):
    per_seed = final.groupby([column, "seed"])["test_acc"].mean()
    return per_seed.groupby(level=column).agg(["mean", lambda s: s.std(ddof=0)]) \
        .set_axis(["mean", "std"], axis=1)


GRID_MISTAKES = [Mistake(settings, hint, (RATES,)) for settings, hint in [
    ([{"dropout": d} for d in itertools.combinations_with_replacement(RATES, 2)],
     "only one order of each pair"),
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
    Mistake(_unaligned, "the mean is right but the single differences are not: subtract "
            "the two settings seed by seed (align on the seed column, e.g. "
            "set_index('seed')), not row by row in table order"),
    Mistake(lambda f, a, b: paired_differences(f, a[::-1], b[::-1]), "you read the pairs "
            "as (p2, p1): first[0] is p1, the rate after the first hidden layer"),
    Mistake(lambda f, a, b: paired_differences(f, a, b).to_numpy(), "Series indexed by seed"),
    Mistake(lambda f, a, b: paired_differences(f, a, b).reset_index(drop=True),
            "must be the seeds"),
    Mistake(lambda f, a, b: paired_differences(f, a, b) * 2, WRONG_DIFFERENCES),
    Mistake(lambda f, a, b: 1 / 0, "raised ZeroDivisionError"),
    Mistake(_todo, "not implemented yet"),
]

MARGINAL_MISTAKES = [
    Mistake(lambda f, c: f.groupby(c)["test_acc"].agg(["mean", "std"]),
            "within each seed first"),
    Mistake(lambda f, c: marginal_means(f, "p2" if c == "p1" else "p1"),
            "group by the column"),
    Mistake(lambda f, c: f.groupby(c)["test_acc"].agg(["mean", "max"]),
            "columns 'mean' and 'std'"),
    Mistake(lambda f, c: marginal_means(f, c).sort_index(ascending=False), "increasing order"),
    Mistake(lambda f, c: marginal_means(f, c).assign(std=0.01), "std for p1 is wrong"),
]

MISTAKES = {"rate_grid": GRID_MISTAKES, "paired_differences": DIFFERENCE_MISTAKES,
            "marginal_means": MARGINAL_MISTAKES}
REFERENCES = {"paired_differences": paired_differences, "marginal_means": marginal_means}
# other answers that must pass: check name -> [the check's arguments]
PASSES = {"rate_grid": [([{"dropout": d, "epochs": 10} for d in GRID], RATES),
                        ([{"dropout": d} for d in itertools.product(*[np.arange(0, .75, .1)] * 2)],
                         [round(0.1 * i, 1) for i in range(8)])],
          "marginal_means": [(_marginal_ddof0,)]}
