"""Exercise 2 (training for more epochs): its checks, references and known mistakes.

On synthetic histories, no randomness: a wrong epoch is named by the first known
mistake (MISTAKES) that gives the same epoch on the same table."""
import numpy as np
import pandas as pd

from .engine import Fail, Mistake, check, known_mistake, report

__all__ = ["check_overfitting_onset", "check_epochs_to_reach"]

EPOCH = np.arange(1, 21)
# test loss lowest at epoch 7, test accuracy highest at 12, train accuracy at 20
HISTORY = {"train_loss": 0.5 * np.exp(-EPOCH / 6), "train_acc": 1 - 0.2 * np.exp(-EPOCH / 5),
           "test_loss": 0.4 + 0.004 * (EPOCH - 7) ** 2 - 0.0005 * (EPOCH > 7) * (EPOCH - 7),
           "test_acc": 0.88 - 0.0004 * (EPOCH - 12) ** 2}
UP_DOWN_UP = [0.70, 0.80, 0.86, 0.84, 0.85, 0.87, 0.88, 0.875]
RISING = [0.5, 0.6, 0.7, 0.8]


def overfitting_onset(history, column="test_loss"):
    """The reference: the epoch (value of the epoch column) with the smallest loss."""
    return int(history.loc[history[column].idxmin(), "epoch"])


def epochs_to_reach(curve, target, column="test_acc"):
    """The reference: the first epoch whose accuracy is >= target, or None if none is."""
    reached = curve[curve[column] >= target]
    return None if reached.empty else int(reached["epoch"].min())


def _run(offset=0, **columns):
    """One model's table, a row per epoch, indexed from offset (a slice of a sweep's)."""
    rows = np.arange(len(columns["test_acc"]))
    return pd.DataFrame({"seed": 0, "epoch": rows + 1, **columns}, index=offset + rows)


def _check_cases(fn, reference, mistakes, cases, rule):
    """Fail on the first case (table, args, what it is) where fn's epoch is not the
    reference's: with the hint of the known mistake that gives the same, else rule."""
    for table, args, what in cases:
        want = reference(table, *args)
        out = fn(table.copy(), *args)
        number = isinstance(out, (int, float, np.number)) and not isinstance(out, bool)
        integral = number and out % 1 == 0
        if (out is None and want is None) or (integral and out == want):
            continue
        hint = known_mistake(out, mistakes, lambda wrong: wrong(table.copy(), *args))
        if want is None:
            hint = "return None, so that 'never' cannot be mistaken for an epoch"
        elif hint is None and out is not None and not integral:
            hint = "return the epoch as an integer"
        raise Fail(f"on {what} you returned {out!r}, not {want}: {hint or rule}")


@check
def check_overfitting_onset(fn):
    """fn(history, column="test_loss") -> the epoch (1, 2, ...) where the loss
    history[column] is smallest."""
    falling = {**HISTORY, "test_loss": 0.6 - 0.01 * EPOCH}
    valid = {**HISTORY, "valid_loss": 0.4 + 0.004 * (EPOCH - 10) ** 2}  # lowest at 10
    cases = [(_run(40, **HISTORY), (), "a slice of a sweep table, indexed 40, 41, ..."),
             (_run(**HISTORY), (), "a history indexed 0, 1, ..."),
             (_run(**falling), (), "a history whose test loss falls until the last epoch"),
             (_run(**valid), ("valid_loss",),
              "column='valid_loss' (test_loss is lowest at 7)")]
    _check_cases(fn, overfitting_onset, ONSET_MISTAKES, cases,
                 "the onset is the epoch (epoch column) of the smallest test_loss")
    return report("overfitting onset", True, "the epoch of minimal test loss, also on a slice")


@check
def check_epochs_to_reach(fn):
    """fn(curve, target, column="test_acc") -> the first epoch with curve[column] >=
    target, or None."""
    cases = [(_run(100, test_acc=UP_DOWN_UP), (0.8,), "a slice indexed from 100, target 0.8"),
             (_run(test_acc=UP_DOWN_UP), (0.855,), "a curve above 0.855, below, above"),
             (_run(test_acc=UP_DOWN_UP), (0.845,), "the same curve, target 0.845"),
             (_run(test_acc=RISING), (0.8,), "a curve that hits its target 0.8 exactly"),
             (_run(test_acc=RISING), (0.9,), "a curve that never reaches its target 0.9"),
             (_run(test_acc=RISING, valid_acc=[0.5, 0.82, 0.83, 0.9]), (0.8, "valid_acc"),
              "column='valid_acc', target 0.8 (test_acc reaches it at epoch 4)")]
    _check_cases(fn, epochs_to_reach, REACH_MISTAKES, cases,
                 "the first epoch whose test_acc >= target ('reach' means >=, not > target)")
    return report("epochs to reach", True, "the first epoch at or above the target, or None")


def _todo(*args):
    raise NotImplementedError("TODO")


IGNORED_COLUMN = "read the column you are given (column=...), not always the test column"
OFF_BY_ONE = "off by one: a row position; epochs count from 1 (the epoch column)"
ONSET_MISTAKES = [
    Mistake(lambda h: int(h.train_acc.argmax()) + 1, "that is where the TRAIN accuracy peaks"),
    Mistake(lambda h: int(h.epoch[h.test_acc.idxmax()]), "where test accuracy peaks"),
    Mistake(lambda h: int(h.test_loss.argmin()), OFF_BY_ONE),
    Mistake(lambda h: int(h.test_loss.idxmin()), "a row label: history.loc[label, 'epoch']"),
    Mistake(lambda h: h.test_loss.min(), "that is the smallest loss, not its epoch"),
    # "the first epoch after which the loss rises": right until the loss never rises
    Mistake(lambda h: int(h.epoch.iloc[int(np.argmax(np.diff(h.test_loss) > 0))]),
            "a loss that never rises is lowest at the last epoch (no overfitting seen yet)"),
    Mistake(lambda h, column="test_loss": overfitting_onset(h), IGNORED_COLUMN),
    Mistake(_todo, "not implemented yet"),
]
REACH_MISTAKES = [
    Mistake(lambda c, t: int(np.argmax(c.test_acc >= t)), OFF_BY_ONE),
    Mistake(lambda c, t: int(c.index[c.test_acc >= t][0]), "a row label, not its epoch"),
    # without the rows exactly at the target: the first epoch strictly above it
    Mistake(lambda c, t: epochs_to_reach(c[c.test_acc != t], t), "reach: >=, not > target"),
    Mistake(lambda c, t: int(c.epoch[c.test_acc >= t].max()), "that is the LAST such epoch"),
    Mistake(lambda c, t: int(c.epoch[c.test_acc.idxmax()]), "the best accuracy's epoch"),
    Mistake(lambda c, t: epochs_to_reach(c, t) or -1, "return None"),
    Mistake(lambda c, t: epochs_to_reach(c, t) or len(c) + 1, "return None"),
    Mistake(lambda c, t: int((c.test_acc < t).sum()) + 1,  # counts a dip after the first
            "first epoch whose test_acc >= target, not 1 + the epochs below it"),
    Mistake(lambda c, t, column="test_acc": epochs_to_reach(c, t), IGNORED_COLUMN),
]
MISTAKES = {"overfitting_onset": ONSET_MISTAKES, "epochs_to_reach": REACH_MISTAKES}
REFERENCES = {"overfitting_onset": overfitting_onset, "epochs_to_reach": epochs_to_reach}
