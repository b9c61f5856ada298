"""Exercise 10 (network width): its checks, checked on synthetic tables of settings
and results like those of exercise 9 (whose settings helper they share). n is
the width, q = 1 - p the keep probability of Srivastava et al. (2014).
"""
import math
import numbers

import numpy as np
import pandas as pd

from ..sweep import DEFAULTS
from .engine import call_student, report, check
from .ex09_training_set_size import _settings_problem

__all__ = ["check_width_settings", "check_nq_gain"]


def nq_gain_reference(final, n, q):
    """Per seed: test accuracy of width round(n/q) with drop probability 1 - q minus
    that of width n without dropout."""
    def accuracy(width, p):
        rows = final[(final.width == width) & np.isclose(final.p1, p)]
        return rows.set_index("seed")["test_acc"]
    return accuracy(round(n / q), 1 - q) - accuracy(n, 0.0)


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
