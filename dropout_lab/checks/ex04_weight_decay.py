"""Exercise 4 (weight decay and dropout): its checks, references and known mistakes.

`check_wd_grid(settings, wds, ps)` for the list of dl.sweep settings, and
`check_interaction(fn)` for fn(final) -> the per-seed interaction table.
"""
import itertools

import pandas as pd
import torch

from .engine import Mistake, check, differing, repeated, report, settings_problem

__all__ = ["check_wd_grid", "check_interaction"]


def _fmt(values):
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


@check
def check_wd_grid(settings, wds, ps):
    """settings: a list of dl.sweep dicts, one per (weight decay, p) pair of the grid
    wds × ps, with dropout=(p, p); everything else the same in all settings."""
    name = "check_wd_grid"
    wds, ps = [float(w) for w in wds], [float(p) for p in ps]
    problem = settings_problem(settings, "{'weight_decay': 0.0, 'dropout': (0.0, 0.0)}")
    if problem:
        return report(name, False, problem)
    for s in settings:
        missing = [k for k in ("weight_decay", "dropout") if k not in s]
        if missing:
            return report(name, False, f"a setting lacks {missing}: give both weight_decay "
                          "and dropout in every setting (the defaults would hide the grid)")
        d = s["dropout"]
        if len(d) != 2 or d[0] != d[1]:
            return report(name, False, f"dropout={tuple(d)}: use the same p in both hidden "
                          "layers, dropout=(p, p)")
    problem = differing(settings, ("weight_decay", "dropout"))
    if problem:
        return report(name, False, problem)
    pairs = [(float(s["weight_decay"]), float(s["dropout"][0])) for s in settings]
    want = list(itertools.product(wds, ps))
    if repeated(pairs):
        return report(name, False, f"duplicate settings {repeated(pairs)}: each "
                      "(weight_decay, p) once")
    if set(pairs) == set(want):
        return report(name, True, f"{len(want)} settings: weight decay {_fmt(wds)} × "
                      f"p {_fmt(ps)}, p the same in both layers")
    if len(pairs) == min(len(wds), len(ps)):
        return report(name, False, f"{len(pairs)} settings, the grid has {len(want)}: did "
                      "you zip() the two lists? Loop over both (itertools.product)")
    keep = {(w, round(1 - p, 12)) for w, p in want}
    if {(w, round(p, 12)) for w, p in pairs} == keep and set(ps) != {1 - p for p in ps}:
        return report(name, False, "your rates are KEEP probabilities 1 - p; dropout takes "
                      "the DROP probability p")
    missing = sorted(set(want) - set(pairs))
    extra = sorted(set(pairs) - set(want))
    return report(name, False, f"(weight_decay, p) missing: {missing[:4]}"
                  f"{' ...' if len(missing) > 4 else ''}; not in the grid: {extra[:4]}")


INTERACTION_COLUMNS = ["weight_decay", "p1", "seed", "gain_wd", "gain_p", "gain_both",
                       "interaction"]


def reference_interaction(final, value="test_acc"):
    """Per seed, for every weight_decay > 0 and p1 > 0: the gains over the baseline
    (weight_decay = 0, p1 = 0) of the same seed, of wd alone, p alone and both, and
    interaction = gain_both - (gain_wd + gain_p)."""
    acc = final.set_index(["weight_decay", "p1", "seed"])[value]
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


@check
def check_interaction(fn):
    """fn(final) -> one row per (weight_decay > 0, p1 > 0, seed) with INTERACTION_COLUMNS."""
    name = "check_interaction"
    final = synthetic_final()
    before = final.copy()
    out = fn(final)
    if not isinstance(out, pd.DataFrame):
        return report(name, False, f"return a pandas DataFrame, got {type(out).__name__}")
    if not final.equals(before):
        return report(name, False, "your function changed the table it was given; work on "
                      "a copy")
    missing = [c for c in INTERACTION_COLUMNS if c not in out.columns]
    if "seed" in missing:
        return report(name, False, "no seed column: compute the interaction per seed (each "
                      "seed against its own baseline), then average over seeds afterwards")
    if missing:
        return report(name, False, f"missing column(s) {missing}; expected "
                      f"{INTERACTION_COLUMNS}")
    right = reference_interaction(final)
    keys = ["weight_decay", "p1", "seed"]
    if len(out) != len(right):
        zeros = out[(out.weight_decay == 0) | (out.p1 == 0)]
        if len(zeros) and len(out) - len(zeros) == len(right):
            return report(name, False, "leave out the rows with weight_decay = 0 or p1 = 0: "
                          "they have no combination to compare")
        return report(name, False, f"{len(out)} rows, expected {len(right)}: one per seed "
                      "and per (weight_decay > 0, p1 > 0)")
    merged = right.merge(out[INTERACTION_COLUMNS], on=keys, how="left",
                         suffixes=("", "_yours"))
    if merged["interaction_yours"].isna().any():
        return report(name, False, "your (weight_decay, p1, seed) rows do not match the "
                      "table's: one row per seed for every weight_decay > 0 and p1 > 0")

    def close(a, b):
        return bool(((merged[a] - merged[b]).abs() < 1e-9).all())

    base = final[(final.weight_decay == 0) & (final.p1 == 0)].set_index("seed")["test_acc"]
    merged["baseline"] = merged["seed"].map(base)
    merged["accuracy"] = merged["gain_both"] + merged["baseline"]
    for col in ("gain_wd", "gain_p", "gain_both"):
        yours = f"{col}_yours"
        if close(col, yours):
            continue
        other = {"gain_wd": "gain_p", "gain_p": "gain_wd"}.get(col)
        if other and close(other, yours):
            return report(name, False, "gain_wd and gain_p are swapped: gain_wd is the gain "
                          "of weight decay alone (p = 0), gain_p of dropout alone (wd = 0)")
        if ((merged[yours] + merged[col]).abs() < 1e-9).all():
            return report(name, False, f"{col} has the wrong sign: a gain is the setting's "
                          "accuracy MINUS the baseline's")
        if col == "gain_both" and close("accuracy", yours):
            return report(name, False, "gain_both is the accuracy itself: subtract the "
                          "baseline (weight_decay = 0, p1 = 0) accuracy of the same seed")
        means = merged.groupby(["weight_decay", "p1"])
        if (means[col].mean() - means[yours].mean()).abs().max() < 1e-9:
            return report(name, False, f"{col} is right on average over seeds but not per "
                          "seed: subtract the baseline of the SAME seed (paired comparison)")
        return report(name, False, f"{col} is wrong: the gain of a setting is its accuracy "
                      "minus the baseline's (weight_decay = 0, p1 = 0), seed by seed")
    if close("interaction", "interaction_yours"):
        return report(name, True, "per-seed gains and interaction = gain_both - (gain_wd + "
                      "gain_p) are right on a synthetic table")
    if ((merged["interaction"] + merged["interaction_yours"]).abs() < 1e-9).all():
        return report(name, False, "interaction has the wrong sign: gain of the combination "
                      "MINUS the sum of the single gains (negative = they fight)")
    return report(name, False, "interaction is wrong: gain_both - (gain_wd + gain_p)")


# ---------------------------------------------------------------------------
# The known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

WDS, PS = [0.0, 1e-4, 1e-3, 3e-3], [0.0, 0.2, 0.5]
GRID = list(itertools.product(WDS, PS))


def _grid(**extra):
    return [{"weight_decay": wd, "dropout": (p, p), **extra} for wd, p in GRID]


def _todo(*args):
    raise NotImplementedError("TODO")


GRID_MISTAKES = [Mistake(settings, hint, (WDS, PS)) for settings, hint in [
    ([{"weight_decay": wd, "dropout": (p, p)} for wd, p in zip(WDS, PS)], "zip"),
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
    out = reference_interaction(final)
    base = final[(final.weight_decay == 0) & (final.p1 == 0)].test_acc.mean()
    acc = final.set_index(["weight_decay", "p1", "seed"]).test_acc
    for i, r in out.iterrows():
        out.loc[i, "gain_wd"] = acc[(r.weight_decay, 0.0, r.seed)] - base
        out.loc[i, "gain_p"] = acc[(0.0, r.p1, r.seed)] - base
        out.loc[i, "gain_both"] = acc[(r.weight_decay, r.p1, r.seed)] - base
    return out.assign(interaction=out.gain_both - out.gain_wd - out.gain_p)


def _edit(**changes):
    """The reference with some columns replaced by changes[column](its output)."""
    def wrong(final):
        out = reference_interaction(final)
        return out.assign(**{col: f(out) for col, f in changes.items()})
    return wrong


def _with_zero_rows(final):
    extra = final[(final.weight_decay == 0) | (final.p1 == 0)][["weight_decay", "p1", "seed"]]
    extra = extra.assign(gain_wd=0.0, gain_p=0.0, gain_both=0.0, interaction=0.0)
    return pd.concat([reference_interaction(final), extra], ignore_index=True)


def _raw_accuracy(final):
    acc = final.set_index(["weight_decay", "p1", "seed"]).test_acc
    out = reference_interaction(final)
    out["gain_both"] = [acc[k] for k in zip(out.weight_decay, out.p1, out.seed)]
    return out.assign(interaction=out.gain_both - out.gain_wd - out.gain_p)


def _mutating(final):
    final["test_acc"] = final["test_acc"].round(2)
    return reference_interaction(final)


INTERACTION_MISTAKES = [
    Mistake(_edit(interaction=lambda o: -o.interaction), "wrong sign"),
    Mistake(_edit(gain_wd=lambda o: o.gain_p, gain_p=lambda o: o.gain_wd), "swapped"),
    Mistake(_edit(gain_wd=lambda o: -o.gain_wd), "wrong sign"),
    Mistake(_unpaired, "SAME seed"),
    Mistake(_raw_accuracy, "accuracy itself"),
    Mistake(_with_zero_rows, "leave out"),
    Mistake(lambda f: reference_interaction(f).groupby(["weight_decay", "p1"], as_index=False)
            .mean().drop(columns="seed"), "per seed"),
    Mistake(lambda f: reference_interaction(f).to_dict(), "DataFrame"),
    Mistake(_mutating, "changed the table"),
    Mistake(_todo, "not implemented yet"),
]

MISTAKES = {"wd_grid": GRID_MISTAKES, "interaction": INTERACTION_MISTAKES}
REFERENCES = {"interaction": reference_interaction}
PASSES = {"wd_grid": [(_grid(n_train=10000, epochs=10), WDS, PS)]}
