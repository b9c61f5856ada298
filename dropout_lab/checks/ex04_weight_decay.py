"""Exercise 4 (weight decay and dropout): its checks, references and known mistakes.

`check_wd_grid(settings, wds, ps)` for the list of dl.sweep settings, and
`check_interaction(fn)` for fn(final) -> the per-seed interaction table, checked
on a synthetic table with a known interaction.
"""
import itertools

import numpy as np
import pandas as pd
import torch

from .engine import (IGNORED_VALUE, Fail, Mistake, check, differing, grid_problem,
                     known_mistake, report, settings_problem, todo, with_decoy)

__all__ = ["check_wd_grid", "check_interaction"]


def _fmt(values):
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


@check
def check_wd_grid(settings, wds, ps):
    """settings: a list of dl.sweep dicts, one per (weight decay, p) pair of the grid
    wds × ps, with dropout=(p, p); everything else the same in all settings."""
    problem = settings_problem(settings, "{'weight_decay': 0.0, 'dropout': (0.0, 0.0)}")
    if problem:
        raise Fail(problem)
    for s in settings:
        missing = [k for k in ("weight_decay", "dropout") if k not in s]
        if missing:
            raise Fail(f"a setting lacks {missing}: give both weight_decay and dropout in "
                       "every setting (the defaults would hide the grid)")
        d = s["dropout"]
        if len(d) != 2 or d[0] != d[1]:
            raise Fail(f"dropout={tuple(d)}: use the same p in both hidden layers, "
                       "dropout=(p, p)")
    pairs = [(s["weight_decay"], s["dropout"][0]) for s in settings]
    grid = list(itertools.product(wds, ps))
    keep = [(wd, 1 - p) for wd, p in grid]
    keep_hint = "your rates are KEEP probabilities 1 - p; dropout takes the DROP probability p"
    problem = (differing(settings, ("weight_decay", "dropout"))
               or grid_problem(pairs, grid, [(keep, keep_hint)]))
    if problem and len(pairs) == min(len(wds), len(ps)):  # zip(), in whatever order
        problem = (f"{len(pairs)} settings, the grid has {len(grid)}: did you zip() the two "
                   "lists? Loop over both (itertools.product)")
    if problem:
        raise Fail(problem)
    return report("wd_grid", True, f"{len(grid)} settings: weight decay {_fmt(wds)} × "
                  f"p {_fmt(ps)}, p the same in both layers")


KEYS = ["weight_decay", "p1", "seed"]
INTERACTION_COLUMNS = KEYS + ["gain_wd", "gain_p", "gain_both", "interaction"]


def reference_interaction(final, value="test_acc"):
    """Per seed, for every weight_decay > 0 and p1 > 0: the gains over the baseline
    (weight_decay = 0, p1 = 0) of the same seed, of wd alone, p alone and both, and
    interaction = gain_both - (gain_wd + gain_p)."""
    acc = final.set_index(KEYS)[value]
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


def _sorted_rows(out):
    """The INTERACTION_COLUMNS of out as floats, rows sorted by KEYS: the form in which
    an answer is compared with the reference and with the known mistakes."""
    return out[INTERACTION_COLUMNS].astype(float).sort_values(KEYS).reset_index(drop=True)


@check
def check_interaction(fn):
    """fn(final) -> one row per (weight_decay > 0, p1 > 0, seed) with INTERACTION_COLUMNS."""
    final = synthetic_final()
    before = final.copy()
    out = fn(final)
    if not isinstance(out, pd.DataFrame):
        raise Fail(f"return a pandas DataFrame, got {type(out).__name__}")
    if not final.equals(before):
        raise Fail("your function changed the table it was given; work on a copy")
    missing = [c for c in INTERACTION_COLUMNS if c not in out.columns]
    if "seed" in missing:
        raise Fail("no seed column: compute the interaction per seed (each seed against its "
                   "own baseline), then average over seeds afterwards")
    if missing:
        raise Fail(f"missing column(s) {missing}; expected {INTERACTION_COLUMNS}")
    if ((out.weight_decay == 0) | (out.p1 == 0)).any():
        raise Fail("leave out the rows with weight_decay = 0 or p1 = 0: they have no "
                   "combination to compare")
    got, right = _sorted_rows(out), _sorted_rows(reference_interaction(final))
    if not got[KEYS].equals(right[KEYS]):
        raise Fail(f"{len(out)} rows: expected {len(right)}, one per seed for every "
                   "weight_decay > 0 and p1 > 0")
    wrong = [c for c in INTERACTION_COLUMNS[3:]
             if not np.allclose(got[c], right[c], atol=1e-9)]
    if not wrong:
        moved = with_decoy(final)
        got = _sorted_rows(fn(moved.copy(), value="valid_acc"))
        if not np.allclose(got[INTERACTION_COLUMNS[3:]], _sorted_rows(reference_interaction(
                moved, value="valid_acc"))[INTERACTION_COLUMNS[3:]], atol=1e-9):
            raise Fail(IGNORED_VALUE)
        return report("interaction", True, "per-seed gains and interaction = gain_both - "
                      "(gain_wd + gain_p) are right on a synthetic table")
    col = wrong[0]
    # families of mistakes, whatever the column: a flipped sign, an unpaired baseline
    if np.allclose(got[col], -right[col], atol=1e-9) and col == "interaction":
        raise Fail("interaction has the wrong sign: gain of the combination MINUS the sum "
                   "of the single gains (negative = they fight)")
    if np.allclose(got[col], -right[col], atol=1e-9):
        raise Fail(f"{col} has the wrong sign: a gain is the setting's accuracy MINUS the "
                   "baseline's")
    over_seeds = [rows.groupby(["weight_decay", "p1"])[col].mean() for rows in (got, right)]
    if np.allclose(*over_seeds, atol=1e-9):
        raise Fail(f"{col} is right on average over seeds but not per seed: subtract the "
                   "baseline of the SAME seed (paired comparison)")
    hint = known_mistake(got, NAMED_INTERACTION_MISTAKES,
                         lambda wrong: _sorted_rows(wrong(final.copy())))
    raise Fail(hint or f"{col} is wrong: the gain of a setting is its accuracy minus the "
               "baseline's (weight_decay = 0, p1 = 0), seed by seed; interaction = "
               "gain_both - (gain_wd + gain_p)")


# ---------------------------------------------------------------------------
# The known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

WDS, PS = [0.0, 1e-4, 1e-3, 3e-3], [0.0, 0.2, 0.5]
GRID = list(itertools.product(WDS, PS))


def _grid(**extra):
    return [{"weight_decay": wd, "dropout": (p, p), **extra} for wd, p in GRID]


GRID_MISTAKES = [Mistake(settings, hint, (WDS, PS)) for settings, hint in [
    ([{"weight_decay": wd, "dropout": (p, p)} for wd, p in zip(WDS, PS)], "zip"),
    ([{"weight_decay": wd, "dropout": (p, p)} for wd, p in zip(WDS[::-1], PS)], "zip"),
    ([{"weight_decay": wd, "dropout": (1 - p, 1 - p)} for wd, p in GRID], "KEEP"),
    ([{"weight_decay": wd, "dropout": p} for wd, p in GRID], "one rate per hidden layer"),
    ([{"weight_decay": wd, "dropout": (p, 0.0)} for wd, p in GRID], "same p in both"),
    ([{"wd": wd, "dropout": (p, p)} for wd, p in GRID], "weight_decay"),
    (_grid()[:-1], "missing"),
    (_grid() + _grid()[:1], "duplicate"),
    (_grid(epochs=10)[:-1] + [{**_grid()[-1], "epochs": 20}], "differ in 'epochs'"),
    (None, "None"),
    ({"weight_decay": WDS, "dropout": PS}, "list of dicts")]]


def _unpaired(final):
    """Every gain against the baseline's mean over seeds, not against the seed's own."""
    out = reference_interaction(final)
    base = final[(final.weight_decay == 0) & (final.p1 == 0)].set_index("seed").test_acc
    gains = ["gain_wd", "gain_p", "gain_both"]
    out[gains] = out[gains].add(out.seed.map(base) - base.mean(), axis=0)
    return out.assign(interaction=out.gain_both - out.gain_wd - out.gain_p)


def _edit(**changes):
    """The reference with some columns replaced by changes[column](its output)."""
    def wrong(final):
        out = reference_interaction(final)
        return out.assign(**{col: f(out) for col, f in changes.items()})
    return wrong


def _with_zero_rows(final):
    extra = final[(final.weight_decay == 0) | (final.p1 == 0)][KEYS]
    extra = extra.assign(gain_wd=0.0, gain_p=0.0, gain_both=0.0, interaction=0.0)
    return pd.concat([reference_interaction(final), extra], ignore_index=True)


def _raw_accuracy(final):
    acc = final.set_index(KEYS).test_acc
    out = reference_interaction(final)
    out["gain_both"] = [acc[k] for k in zip(out.weight_decay, out.p1, out.seed)]
    return out.assign(interaction=out.gain_both - out.gain_wd - out.gain_p)


def _mutating(final):
    final["test_acc"] = final["test_acc"].round(2)
    return reference_interaction(final)


NAMED_INTERACTION_MISTAKES = [  # check_interaction names these by their values
    Mistake(_edit(gain_wd=lambda o: o.gain_p, gain_p=lambda o: o.gain_wd), "gain_wd and "
            "gain_p are swapped: gain_wd is the gain of weight decay alone (p = 0), gain_p "
            "of dropout alone (wd = 0)"),
    Mistake(_raw_accuracy, "gain_both is the accuracy itself: subtract the baseline "
            "(weight_decay = 0, p1 = 0) accuracy of the same seed"),
]
INTERACTION_MISTAKES = NAMED_INTERACTION_MISTAKES + [
    Mistake(lambda f, value="test_acc": reference_interaction(f), IGNORED_VALUE),
    Mistake(_edit(interaction=lambda o: -o.interaction), "wrong sign"),
    Mistake(_edit(gain_wd=lambda o: -o.gain_wd), "wrong sign"),
    Mistake(_edit(gain_both=lambda o: -o.gain_both), "gain_both has the wrong sign"),
    Mistake(_unpaired, "SAME seed"),
    Mistake(_with_zero_rows, "leave out"),
    Mistake(lambda f: reference_interaction(f).groupby(["weight_decay", "p1"], as_index=False)
            .mean().drop(columns="seed"), "per seed"),
    Mistake(lambda f: reference_interaction(f).to_dict(), "DataFrame"),
    Mistake(_mutating, "changed the table"),
    Mistake(todo, "not implemented yet"),
]

MISTAKES = {"wd_grid": GRID_MISTAKES, "interaction": INTERACTION_MISTAKES}
REFERENCES = {"interaction": reference_interaction}
TINY_WDS = [0.0, 1e-7, 1e-6]  # distinct, though equal to 6 decimal places
PASSES = {"wd_grid": [(_grid(n_train=10000, epochs=10), WDS, PS),
                      ([{"weight_decay": wd, "dropout": (p, p)}
                        for wd, p in itertools.product(TINY_WDS, PS)], TINY_WDS, PS)]}
