"""Exercise 10 (network width): its checks, references and known mistakes, checked on
synthetic tables like those of exercise 9. n is the width, q = 1 - p the keep
probability of Srivastava et al. (2014).
"""
import math
import numbers

import numpy as np
import pandas as pd

from ..sweep import DEFAULTS
from .engine import (Fail, Mistake, by_seed, check, differing, grid_problem, known_mistake,
                     report, settings_problem)

__all__ = ["check_width_settings", "check_nq_gain"]


def _gain(final, wide, p, n):
    """Per seed: test accuracy of width `wide` with drop probability p minus that of
    width n without dropout."""
    def accuracy(width, p):
        rows = final[(final.width == width) & np.isclose(final.p1, p)]
        return rows.set_index("seed")["test_acc"]
    return accuracy(wide, p) - accuracy(n, 0.0)


def nq_gain_reference(final, n, q):
    """The reference: the gain of width round(n/q) with p = 1 - q over width n, p = 0."""
    return _gain(final, round(n / q), 1 - q, n)


@check
def check_width_settings(settings, widths, rates):
    """settings: dl.sweep dicts, one per (width, rate): hidden=(w, w), dropout=(p, p),
    each pair once, identical otherwise."""
    problem = settings_problem(settings, "{'hidden': (128, 128), 'dropout': (0.5, 0.5)}")
    if problem:
        raise Fail(problem)
    pairs = []
    for s in settings:
        hidden = s.get("hidden", DEFAULTS["hidden"])
        dropout = tuple(s.get("dropout", DEFAULTS["dropout"]))
        if isinstance(hidden, numbers.Number):
            raise Fail(f"hidden={hidden!r}: give the widths of both hidden layers as a tuple, "
                       f"hidden=({hidden}, {hidden})")
        if len(hidden) != 2 or hidden[0] != hidden[1]:
            raise Fail(f"hidden={tuple(hidden)}: the chapter's net has two hidden layers of "
                       "one width, hidden=(w, w) (not ONE hidden layer, not two widths)")
        if len(dropout) != 2 or dropout[0] != dropout[1]:
            raise Fail(f"dropout={dropout}: the same rate after both hidden layers, "
                       "dropout=(p, p)")
        pairs.append((hidden[0], dropout[0]))
    want = [(w, p) for w in widths for p in rates]
    problem = grid_problem(pairs, want, [
        ([(w, 1 - p) for w, p in want], "these are keep probabilities q = 1 - p: dl.sweep "
         "uses the DROP probability p"),
        (list(zip(widths, rates)), "each width with ONE rate: you paired them with zip; the "
         "grid is every width with every rate (itertools.product)")])
    if problem:
        raise Fail(problem)
    problem = differing(settings, ("hidden", "dropout"))
    if problem:
        raise Fail(problem)
    return report("width_settings", True, f"{len(want)} settings = {len(widths)} widths x "
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
    final = _synthetic_widths()
    for n, q in [(128, 0.5), (64, 0.8), (256, 0.8)]:
        want = nq_gain_reference(final, n, q)
        got = by_seed(fn(final.copy(), n, q), want.index, empty=f"for n={n}, q={q} no "
                      f"rows matched: 1 - {q} is {1 - q!r} in floating point, and {n}/{q} = "
                      f"{n / q!r}; compare with np.isclose(final.p1, 1 - q) and width == "
                      "round(n / q)")
        if np.allclose(got, want, atol=1e-9):
            continue
        hint = known_mistake(got, NQ_MISTAKES, lambda wrong: wrong(final.copy(), n, q)
                             .reindex(want.index))
        if hint is None and np.isclose(got.mean(), want.mean(), atol=1e-9):
            hint = ROW_ORDER  # any pairing of the rows other than by seed
        raise Fail(f"for n={n}, q={q}: " + (hint or (
            f"expected test_acc(width {round(n / q)}, p={1 - q:g}) - test_acc(width {n}, "
            "p=0) per seed")))
    return report("nq_gain", True, "paired per seed, width n/q with p = 1 - q against width "
                  "n without dropout")


# ---------------------------------------------------------------------------
# The known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

WIDTHS, RATES = [32, 64, 128], [0.0, 0.2, 0.5]
GRID = [(w, p) for w in WIDTHS for p in RATES]


def _grid(**extra):
    return [{"hidden": (w, w), "dropout": (p, p), **extra} for w, p in GRID]


SETTINGS_MISTAKES = [Mistake(settings, hint, (WIDTHS, RATES)) for settings, hint in [
    ([{"hidden": (w,), "dropout": (p,)} for w, p in GRID], "ONE hidden layer"),
    ([{"hidden": w, "dropout": (p, p)} for w, p in GRID], "as a tuple"),
    ([{"hidden": (w, w), "dropout": (1 - p, 1 - p)} for w, p in GRID], "keep probabilities"),
    ([{"hidden": (w, w), "dropout": (p, p)} for w, p in zip(WIDTHS, RATES)], "zip"),
    ([{"hidden": (w, w), "dropout": (p, p), "epochs": 5 if p else 10} for w, p in GRID],
     "differ in 'epochs'"),
    (_grid()[:-1], "missing"),
    (_grid() + _grid()[:1], "more than once"),
    ([{"hidden": (w, w), "dropout": (p, 0.5)} for w, p in GRID], "the same rate after both")]]


def _exact_float(final, n, q):
    rows = final[(final.width == n / q) & (final.p1 == 1 - q)]
    return rows.set_index("seed")["test_acc"] - _gain(final, n, 0.0, n)


def _row_order(final, n, q):
    a = final[(final.width == round(n / q)) & np.isclose(final.p1, 1 - q)]
    b = final[(final.width == n) & (final.p1 == 0)]
    return a["test_acc"].reset_index(drop=True).set_axis(sorted(a.seed)) - \
        b["test_acc"].reset_index(drop=True).set_axis(sorted(b.seed))


ROW_ORDER = ("the mean is right but the single differences are not: subtract seed by seed "
             "(set_index('seed')), not row by row")
NQ_MISTAKES = [
    Mistake(_exact_float, "floating point"),
    Mistake(lambda f, n, q: -nq_gain_reference(f, n, q), "the sign is reversed: return "
            "(wide net with dropout) minus (width n without), positive when the rule holds "
            "or better"),
    Mistake(lambda f, n, q: _gain(f, round(n * q), 1 - q, n), "you used width n·q: the rule "
            "says a dropout net needs n/q units to match n without dropout"),
    Mistake(lambda f, n, q: _gain(f, round(n / q), q, n), "you used p = q: q is the KEEP "
            "probability, the drop probability is p = 1 - q"),
    Mistake(lambda f, n, q: _gain(f, round(n / q), 0.0, n), "both nets are without dropout: "
            "the wide one needs dropout p = 1 - q"),
    Mistake(lambda f, n, q: _gain(f, n, 1 - q, n), "both nets have width n: the dropout "
            "net should be n/q wide"),
    Mistake(_row_order, ROW_ORDER),
]

MISTAKES = {"width_settings": SETTINGS_MISTAKES, "nq_gain": NQ_MISTAKES}
REFERENCES = {"nq_gain": nq_gain_reference}
PASSES = {"width_settings": [(_grid(n_train=5000, epochs=15), WIDTHS, RATES)]}
