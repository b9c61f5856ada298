"""Exercise 9 (training-set size): its checks, references and known mistakes.

Tables whose rows are not in seed order and whose seeds differ a lot, so that
only a paired, seed-by-seed difference has the right spread. `p` is the DROP
probability. No check draws random numbers.
"""
import itertools
import math
import numbers

import numpy as np
import pandas as pd

from ..sweep import DEFAULTS
from .engine import (Fail, Mistake, check, differing, known_mistake, mean_std, repeated,
                     report, settings_problem)

__all__ = ["check_size_settings", "check_dropout_gain"]
NONE, HALF = (0.0, 0.0), (0.5, 0.5)


def dropout_gain_reference(final, value="test_acc"):
    """Per training-set size: mean and std over seeds of the paired difference
    `value` (with dropout) - `value` (without), matched by seed."""
    with_dropout = final[final.p1 > 0].set_index(["n_train", "seed"])[value]
    without = final[final.p1 == 0].set_index(["n_train", "seed"])[value]
    return (with_dropout - without).groupby(level="n_train").agg(["mean", "std"])


def _n_train(setting):
    """The setting's number of training images (None: all 60,000); else the check fails."""
    if "n_train" not in setting:
        raise Fail("a setting has no 'n_train': without it the net trains on all 60,000 "
                   "images. Give each setting n_train=size")
    n = setting["n_train"]
    if n is None:
        return 60000
    if isinstance(n, bool) or not (isinstance(n, numbers.Real) and float(n).is_integer()):
        raise Fail(f"n_train must be a whole number of training images (e.g. 500, not a "
                   f"fraction), got {n!r}")
    return int(n)


def _rates(setting):
    """The setting's dropout rates, rounded: 0.5 and 0.50000001 are the same rate."""
    return tuple(round(float(v), 6) for v in setting.get("dropout", DEFAULTS["dropout"]))


@check
def check_size_settings(settings, sizes, epochs=None):
    """settings: dl.sweep dicts, for every size in `sizes` one net without dropout
    (0.0, 0.0) and one with (0.5, 0.5), n_train = size; the two nets of one size
    differ only in dropout. epochs (optional): {size: epochs} that each must use."""
    problem = settings_problem(settings, "{'dropout': (0.5, 0.5), 'n_train': 500}")
    if problem:
        raise Fail(problem)
    got = [(_n_train(s), _rates(s)) for s in settings]
    if (1.0, 1.0) in {d for _, d in got}:
        raise Fail("dropout (1.0, 1.0) drops every unit: p is the DROP probability, so no "
                   "dropout is (0.0, 0.0)")
    if repeated(got):
        raise Fail(f"some (n_train, dropout) appear twice, e.g. {repeated(got)[0]}")
    want = {(int(n), d) for n in sizes for d in (NONE, HALF)}
    missing, extra = sorted(want - set(got)), sorted(set(got) - want)
    if missing:
        n, d = missing[0]
        raise Fail(f"no net {'WITHOUT' if d == NONE else 'WITH'} dropout {d} at n_train={n} "
                   f"({len(missing)} of {len(want)} settings missing): each size needs "
                   "dropout (0.0, 0.0) and (0.5, 0.5)"
                   + (f"; unexpected: {extra[:2]}" if extra else ""))
    if extra:
        raise Fail(f"settings outside the sizes and the two dropout settings: {extra[:3]}")
    for n in sorted({int(n) for n in sizes}):
        pair = [s for s, (size, _) in zip(settings, got) if size == n]
        unfair = differing(pair, ["dropout"])
        if unfair:
            raise Fail(f"at n_train={n} the nets with and without dropout differ in more "
                       f"than the dropout: {unfair}")
        used = pair[0].get("epochs", DEFAULTS["epochs"])
        if epochs is not None and n in epochs and used != epochs[n]:
            default = "" if "epochs" in pair[0] else " (no 'epochs' key, so dl.sweep used 10)"
            raise Fail(f"n_train={n} trains for {used} epochs{default}; the plan gives it "
                       f"{epochs[n]}: use epochs=EPOCHS[n]")
    return report("size_settings", True, f"{len(settings)} settings: {len(sizes)} sizes x "
                  "without/with dropout, identical otherwise")


def _synthetic_sizes():
    """A table like the notebook's `final`: one row per model, sizes 100, 1000,
    10000, p1 in {0, 0.5}, seeds 4, 5, 6 with large seed effects shared by both
    settings; rows of some groups out of seed order."""
    seed_effect = {4: 0.020, 5: -0.015, 6: 0.001}
    base = {100: 0.66, 1000: 0.76, 10000: 0.83}
    gain = {100: 0.002, 1000: 0.018, 10000: 0.006}
    wobble = [0.0021, -0.0013, 0.0034, -0.0027, 0.0008, 0.0016, -0.0031, 0.0005, -0.0011]
    rows = []
    for i, (n, p) in enumerate(itertools.product(base, [0.0, 0.5])):
        for j, seed in enumerate([6, 4, 5] if i % 2 else [4, 5, 6]):
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
    std: over seeds, the paired difference value(with dropout) - value(without). A
    wrong mean, or a wrong std, is named by the known mistake that gives it."""
    final = _synthetic_sizes()
    for value in ("test_acc", "gap"):
        want = dropout_gain_reference(final, value)

        def mean_and_std(answer):  # copies: torch warns on the read-only arrays of pandas
            out = answer(final.copy(), value)
            return [np.array(part) for part in mean_std(out, want.index, "size")]

        mean, std = mean_and_std(fn)
        if not np.allclose(mean, want["mean"], atol=1e-9):
            hint = known_mistake(mean, GAIN_MISTAKES, lambda wrong: mean_and_std(wrong)[0])
            raise Fail(hint or f"wrong mean for {value}: per size, the difference (p1 > 0) - "
                       "(p1 = 0) averaged over seeds")
        right_stds = [want["std"], want["std"] * math.sqrt(2 / 3)]  # ddof 1, or ddof 0
        if not any(np.allclose(std, right, atol=1e-9) for right in right_stds):
            hint = known_mistake(std, GAIN_MISTAKES, lambda wrong: mean_and_std(wrong)[1])
            raise Fail(hint or "the std is wrong: per size, the std over seeds of the "
                       "seed-by-seed differences")
    return report("dropout_gain", True, "paired differences per seed, mean and std per size")


# The known mistakes (tests/test_checks_tables.py walks the tables)

SIZES = [250, 500, 1000]
EPOCHS = {250: 40, 500: 20, 1000: 10}


def _settings(dropouts=(NONE, HALF), **extra):
    return [{"dropout": d, "n_train": n, **extra} for n in SIZES for d in dropouts]


SETTINGS_MISTAKES = [Mistake(settings, hint, (SIZES,)) for settings, hint in [
    ([{"dropout": d, "epochs": 10} for n in SIZES for d in (NONE, HALF)], "no 'n_train'"),
    ([{"dropout": d, "n": n} for n in SIZES for d in (NONE, HALF)], "does not know the key"),
    ([{"dropout": d, "n_train": n / 60000} for n in SIZES for d in (NONE, HALF)], "fraction"),
    (_settings([(1.0, 1.0), HALF]), "DROP probability"),
    (_settings([HALF]), "WITHOUT dropout"),
    (_settings([NONE]), "WITH dropout"),
    ([{"dropout": 0.5, "n_train": n} for n in SIZES], "must be a tuple"),
    ([{"dropout": d, "n_train": n, "epochs": 10 if d[0] else 20}
      for n in SIZES for d in (NONE, HALF)], "differ in more than the dropout"),
    (_settings() + _settings()[:1], "appear twice"),
    ({"dropout": HALF, "n_train": 500}, "list of dicts")]] + [
    Mistake(_settings(epochs=10), "EPOCHS[n]", (SIZES, EPOCHS)),
    Mistake(_settings(), "used 10", (SIZES, EPOCHS))]


def _gain_unpaired(final, value="test_acc"):
    stats = final.groupby(["n_train", "p1"])[value].agg(["mean", "var"]).unstack("p1")
    return pd.DataFrame({"mean": stats["mean"][0.5] - stats["mean"][0.0],
                         "std": np.sqrt(stats["var"][0.5] + stats["var"][0.0])})


def _gain_row_order(final, value="test_acc"):
    rows = {}
    for n, group in final.groupby("n_train"):
        d = group[group.p1 > 0][value].to_numpy() - group[group.p1 == 0][value].to_numpy()
        rows[n] = {"mean": d.mean(), "std": d.std(ddof=1)}
    return pd.DataFrame.from_dict(rows, orient="index")


GAIN_MISTAKES = [
    Mistake(lambda f, v="test_acc": -dropout_gain_reference(f, v).assign(
        std=dropout_gain_reference(f, v)["std"]), "the sign is reversed: "
            "gain = with dropout MINUS without (positive when dropout helps)"),
    Mistake(lambda f, v="test_acc": dropout_gain_reference(f), "you always used test_acc: "
            "use the column named by the argument `value` (here 'gap')"),
    Mistake(_gain_unpaired, "your std combines the two settings' spreads as if independent; "
            "the seeds are paired (same init and data): take the difference seed by seed, "
            "then its std"),
    Mistake(_gain_row_order, "the std is wrong: subtract seed by seed, aligned on the seed "
            "(e.g. set_index(['n_train', 'seed'])), not row by row in table order; then the "
            "std over seeds per size"),
]

MISTAKES = {"size_settings": SETTINGS_MISTAKES, "dropout_gain": GAIN_MISTAKES}
REFERENCES = {"dropout_gain": dropout_gain_reference}
PLANNED = [{**s, "epochs": EPOCHS[s["n_train"]], "batch_size": 64} for s in _settings()]
PASSES = {"size_settings": [(PLANNED, SIZES), (PLANNED, SIZES, EPOCHS)]}
