"""Exercise 2 (training for more epochs): its checks, references and known mistakes.

Checked on small synthetic training histories (a test loss that bottoms out
long before the train accuracy peaks, ...). No randomness.
"""
import math
import numbers

import numpy as np
import pandas as pd

from .engine import Mistake, check, report

__all__ = ["check_overfitting_onset", "check_epochs_to_reach"]


def overfitting_onset(history):
    """The reference: the epoch (value of the epoch column) with the smallest test loss."""
    return int(history.loc[history["test_loss"].idxmin(), "epoch"])


def epochs_to_reach(curve, target):
    """The reference: the first epoch whose test_acc is >= target, or None if none is."""
    reached = curve[curve["test_acc"] >= target]
    return None if reached.empty else int(reached["epoch"].min())


def _history(epochs=20, offset=0):
    """One model's history: test loss lowest at epoch 7, test accuracy highest at
    epoch 12, train accuracy highest at the last epoch; the index starts at `offset`
    (as in a slice of a sweep's table)."""
    epoch = np.arange(1, epochs + 1)
    test_loss = 0.40 + 0.004 * (epoch - 7) ** 2 - 0.0005 * (epoch > 7) * (epoch - 7)
    test_acc = 0.88 - 0.0004 * (epoch - 12) ** 2
    train_acc = 1 - 0.2 * np.exp(-epoch / 5)
    train_loss = 0.5 * np.exp(-epoch / 6)
    return pd.DataFrame({"seed": 0, "epoch": epoch, "train_loss": train_loss,
                         "train_acc": train_acc, "test_loss": test_loss,
                         "test_acc": test_acc}, index=np.arange(offset, offset + epochs))


def _as_int(value):
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(value)
    return None


@check
def check_overfitting_onset(fn):
    """fn(history) -> the epoch (1, 2, ...) where the test loss is smallest."""
    name = "overfitting onset"
    falling = "a history whose test loss falls until the last epoch"
    cases = [(_history(offset=40), "a slice of a sweep table, indexed 40, 41, ..."),
             (_history(), "a history indexed 0, 1, ..."),
             (_history().assign(test_loss=lambda t: 0.6 - 0.01 * t.epoch), falling)]
    for history, what in cases:
        want = overfitting_onset(history)
        out = fn(history.copy())
        got = _as_int(out)
        if got == want:
            continue
        if got is None:
            loss = isinstance(out, numbers.Real) and math.isclose(
                float(out), history["test_loss"].min(), rel_tol=1e-6)
            return report(name, False, f"return the epoch as an integer, got {out!r}"
                          + (" (that is the smallest loss, not its epoch)" if loss else ""))
        row = history.index.get_loc(history["test_loss"].idxmin())
        if got == row or got == want - 1:
            return report(name, False, f"off by one on {what}: you returned {got}, the "
                          f"row position; the epochs count from 1, return the value "
                          f"in the epoch column ({want})")
        if got == history["test_loss"].idxmin():
            return report(name, False, f"on {what} you returned the row label {got}, not "
                          f"the epoch: look the epoch up, history.loc[label, 'epoch']")
        hints = {"train_acc": ("idxmax", "that is where the TRAIN accuracy peaks"),
                 "test_acc": ("idxmax", "that is where the test accuracy peaks"),
                 "train_loss": ("idxmin", "that is where the TRAIN loss is lowest"),
                 "test_loss": ("idxmax", "that is where the test loss is HIGHEST")}
        if what == falling:
            return report(name, False, f"on {what} you returned {got}, expected {want}: "
                          "when the test loss never rises, the minimum is at the last "
                          "epoch (no overfitting seen yet)")
        for column, (method, hint) in hints.items():
            label = getattr(history[column], method)()
            if got in (int(history.loc[label, "epoch"]), label):
                return report(name, False, f"{hint}; the onset of overfitting is the "
                              f"epoch of minimal test loss ({want} on {what})")
        return report(name, False, f"on {what} you returned {got}, expected {want}: the "
                      "epoch (epoch column) of the smallest test_loss")
    return report(name, True, "the epoch of minimal test loss, counted from 1, also on a "
                  "slice of a larger table")


def _curve(values, offset=0):
    return pd.DataFrame({"epoch": np.arange(1, len(values) + 1), "test_acc": values},
                        index=np.arange(offset, offset + len(values)))


@check
def check_epochs_to_reach(fn):
    """fn(curve, target) -> the first epoch with test_acc >= target, or None."""
    name = "epochs to reach"
    up_down_up = [0.70, 0.80, 0.86, 0.84, 0.85, 0.87, 0.88, 0.875]
    cases = [(_curve(up_down_up, offset=100), 0.80, "a slice indexed from 100"),
             (_curve(up_down_up), 0.855, "a curve that rises above the target, dips "
              "below it, then rises again"),
             (_curve(up_down_up), 0.845, "the same curve, target 0.845"),
             (_curve([0.5, 0.6, 0.7, 0.8]), 0.8, "a curve that hits the target exactly"),
             (_curve([0.5, 0.6, 0.7, 0.8]), 0.9, "a curve that never reaches the target")]
    for curve, target, what in cases:
        want = epochs_to_reach(curve, target)
        out = fn(curve.copy(), target)
        if want is None:
            if out is None:
                continue
            return report(name, False, f"on {what} return None (got {out!r}), so that "
                          "'never' cannot be mistaken for an epoch")
        got = _as_int(out)
        if got == want:
            continue
        accs = curve["test_acc"].to_numpy()
        epochs = curve["epoch"].to_numpy()
        strict = epochs_to_reach(curve.assign(test_acc=accs - 1e-12), target)
        if out is None and strict is None:
            return report(name, False, f"on {what} (target {target}) you returned None, but "
                          f"epoch {want} reaches it: 'reach' means test_acc >= target, "
                          "not > target")
        if got is None:
            return report(name, False, f"on {what} return the epoch as an integer, got "
                          f"{out!r}")
        if got == want - 1 or got == int(np.argmax(accs >= target)):
            hint = "off by one: return the value of the epoch column (epochs count from 1)"
        elif got == curve.index[np.argmax(accs >= target)] != want:
            hint = "you returned a row label of the table: return its epoch"
        elif strict is not None and got == strict:
            hint = "'reach' means test_acc >= target, not > target"
        elif got == int(epochs[accs >= target].max()):
            hint = "that is the LAST epoch at or above the target; return the first"
        elif got == int(epochs[np.argmax(accs)]):
            hint = "that is the epoch of the best accuracy, not of the first one >= target"
        else:
            hint = f"expected {want}: the first epoch whose test_acc >= target"
        return report(name, False, f"on {what} (target {target}) you returned {got}: {hint}")
    return report(name, True, "the first epoch at or above the target, None if never")


# ---------------------------------------------------------------------------
# The known mistakes (tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

def _todo(*args):
    raise NotImplementedError("TODO")


def _strictly_above(curve, target):
    reached = curve[curve["test_acc"] > target]
    return None if reached.empty else int(reached["epoch"].iloc[0])


ONSET_MISTAKES = [
    Mistake(lambda h: int(h["train_acc"].to_numpy().argmax()) + 1, "TRAIN accuracy peaks"),
    Mistake(lambda h: int(h.loc[h["test_acc"].idxmax(), "epoch"]), "test accuracy peaks"),
    Mistake(lambda h: int(h["test_loss"].to_numpy().argmin()), "off by one"),
    Mistake(lambda h: int(h["test_loss"].idxmin()), "row label"),
    Mistake(lambda h: h["test_loss"].min(), "smallest loss, not its epoch"),
    # "the first epoch after which the loss rises": right until the loss never rises
    Mistake(lambda h: int(h.epoch.iloc[int(np.argmax(np.diff(h.test_loss.to_numpy()) > 0))]),
            "no overfitting seen yet"),
    Mistake(_todo, "not implemented yet"),
]

REACH_MISTAKES = [
    Mistake(lambda c, t: int(np.argmax(c["test_acc"].to_numpy() >= t)), "off by one"),
    Mistake(lambda c, t: int(c.index[c["test_acc"] >= t][0]), "row label"),
    Mistake(_strictly_above, "not > target"),
    Mistake(lambda c, t: int(c["epoch"][c["test_acc"] >= t].max()), "LAST epoch"),
    Mistake(lambda c, t: int(c.loc[c["test_acc"].idxmax(), "epoch"]), "best accuracy"),
    Mistake(lambda c, t: epochs_to_reach(c, t) or -1, "return None"),
    Mistake(lambda c, t: epochs_to_reach(c, t) or len(c) + 1, "return None"),
    Mistake(lambda c, t: int((c["test_acc"] < t).sum()) + 1,
            "first epoch whose test_acc >= target"),
]

MISTAKES = {"overfitting_onset": ONSET_MISTAKES, "epochs_to_reach": REACH_MISTAKES}
REFERENCES = {"overfitting_onset": overfitting_onset, "epochs_to_reach": epochs_to_reach}
