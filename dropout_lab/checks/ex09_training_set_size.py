"""Exercise 9 (training-set size): its checks, references and known mistakes.

Tables whose rows are not in seed order and whose seeds differ a lot, so that
only a paired, seed-by-seed difference has the right spread.

`p` is always the DROP probability. No check draws random numbers.
"""
import itertools
import math
import numbers

import numpy as np
import pandas as pd

from ..sweep import DEFAULTS
from .engine import Mistake, check, mean_std, repeated, report, settings_problem

__all__ = ["check_size_settings", "check_dropout_gain"]


def dropout_gain_reference(final, value="test_acc"):
    """Per training-set size: mean and std over seeds of the paired difference
    `value` (with dropout) - `value` (without), matched by seed."""
    with_dropout = final[final.p1 > 0].set_index(["n_train", "seed"])[value]
    without = final[final.p1 == 0].set_index(["n_train", "seed"])[value]
    return (with_dropout - without).groupby(level="n_train").agg(["mean", "std"])


def _key(values):
    return tuple(round(float(v), 6) for v in values)


@check
def check_size_settings(settings, sizes, epochs=None):
    """settings: dl.sweep dicts, for every size in `sizes` one net without dropout
    (0.0, 0.0) and one with (0.5, 0.5), n_train = size; the two nets of one size
    differ only in dropout. epochs (optional): {size: epochs} that each must use."""
    name = "size settings"
    problem = settings_problem(settings, "{'dropout': (0.5, 0.5), 'n_train': 500}")
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
    if repeated(got):
        return report(name, False, f"some (n_train, dropout) appear twice, e.g. "
                      f"{repeated(got)[0]}")
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
        mean, std = mean_std(fn(final.copy(), value), want.index, "size")
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
# The known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

SIZES = [250, 500, 1000]
EPOCHS = {250: 40, 500: 20, 1000: 10}
DROPOUTS = [(0.0, 0.0), (0.5, 0.5)]


def _settings(**extra):
    return [{"dropout": d, "n_train": n, **extra} for n in SIZES for d in DROPOUTS]


SETTINGS_MISTAKES = [Mistake(settings, hint, (SIZES,)) for settings, hint in [
    ([{"dropout": d, "epochs": 10} for n in SIZES for d in DROPOUTS], "no 'n_train'"),
    ([{"dropout": d, "n": n} for n in SIZES for d in DROPOUTS], "does not know the key"),
    ([{"dropout": d, "n_train": n / 60000} for n in SIZES for d in DROPOUTS], "fraction"),
    ([{"dropout": d, "n_train": n} for n in SIZES for d in [(1.0, 1.0), (0.5, 0.5)]],
     "DROP probability"),
    ([{"dropout": (0.5, 0.5), "n_train": n} for n in SIZES], "WITHOUT dropout"),
    ([{"dropout": (0.0, 0.0), "n_train": n} for n in SIZES], "WITH dropout"),
    ([{"dropout": 0.5, "n_train": n} for n in SIZES], "must be a tuple"),
    ([{"dropout": d, "n_train": n, "epochs": 10 if d[0] else 20}
      for n in SIZES for d in DROPOUTS], "differ in more than the dropout"),
    (_settings() + _settings()[:1], "appear twice"),
    ({"dropout": (0.5, 0.5), "n_train": 500}, "list of dicts")]] + [
    Mistake(_settings(epochs=10), "EPOCHS[n]", (SIZES, EPOCHS)),
    Mistake(_settings(), "used 10", (SIZES, EPOCHS))]


def _frame(mean, std, index=None):
    return pd.DataFrame({"mean": mean, "std": std}, index=index)


def _gain_unpaired(final, value="test_acc"):
    stats = final.groupby(["n_train", "p1"])[value].agg(["mean", "var"]).unstack("p1")
    return _frame(stats["mean"][0.5] - stats["mean"][0.0],
                  np.sqrt(stats["var"][0.5] + stats["var"][0.0]))


def _gain_row_order(final, value="test_acc"):
    rows = {}
    for n, group in final.groupby("n_train"):
        d = group[group.p1 > 0][value].to_numpy() - group[group.p1 == 0][value].to_numpy()
        rows[n] = (d.mean(), d.std(ddof=1))
    return _frame(*zip(*rows.values()), index=list(rows))


GAIN_MISTAKES = [
    Mistake(lambda f, v="test_acc": -dropout_gain_reference(f, v).assign(
        std=dropout_gain_reference(f, v)["std"]), "sign is reversed"),
    Mistake(lambda f, v="test_acc": dropout_gain_reference(f), "argument `value`"),
    Mistake(_gain_unpaired, "as if independent"),
    Mistake(_gain_row_order, "not row by row"),
]

MISTAKES = {"size_settings": SETTINGS_MISTAKES, "dropout_gain": GAIN_MISTAKES}
REFERENCES = {"dropout_gain": dropout_gain_reference}
PLANNED = [{**s, "epochs": EPOCHS[s["n_train"]], "batch_size": 64} for s in _settings()]
PASSES = {"size_settings": [(PLANNED, SIZES), (PLANNED, SIZES, EPOCHS)]}
