"""The book's one inference rule: compare two settings by a 95 % t-interval.

The unit of replication is the seed: one initialization, one data order, one
training subset. dl.sweep gives models with the same seed the same
initialization and data order whatever their setting (common random numbers),
so two settings are compared seed by seed: d_s = a_s - b_s. Much of the luck of
a seed is shared by both settings and cancels in d_s, so the paired interval is
narrower than one that ignores the pairing. Runs that share no seeds are
compared with Welch's interval instead.

The verdict comes from the interval alone: if it excludes 0, A is ahead of (or
behind) B; if it includes 0 (touching counts), there is no measurable difference.
"""
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats


def direction(lo, hi):
    """The verdict of an interval for A - B as a number: +1 if it lies above 0 (A is
    ahead), -1 if below (A is behind), 0 if it includes 0 (touching counts). Pages
    branch on this, never on lo and hi themselves, so the rule lives here once."""
    return 1 if lo > 0 else -1 if hi < 0 else 0


class Verdict:
    """What Paired and Welch share: their printed sentence and their direction."""

    @property
    def direction(self):
        """+1 (A measurably ahead), -1 (measurably behind) or 0 (no measurable
        difference): the same rule as the verdict sentence."""
        return direction(self.lo, self.hi)

    def __str__(self):
        return self.verdict


@dataclass(frozen=True)
class Paired(Verdict):
    """A paired comparison of A and B over n seeds; all numbers in the units of
    the data (e.g. accuracy as a fraction), not scaled."""
    n: int              # seeds, i.e. pairs
    mean: float         # mean of the differences a - b
    sd: float           # standard deviation of the differences (n - 1 in the denominator)
    se: float           # its standard error, sd/sqrt(n)
    df: int             # degrees of freedom, n - 1
    t: float            # the t quantile with df degrees of freedom
    lo: float           # the interval for the mean difference: mean ± t·se
    hi: float
    confidence: float
    verdict: str        # the sentence, generated from lo and hi


@dataclass(frozen=True)
class Welch(Verdict):
    """An unpaired comparison of A (n_a runs) and B (n_b runs), Welch's interval."""
    n_a: int
    n_b: int
    mean: float         # mean(a) - mean(b)
    sd_a: float
    sd_b: float
    se: float           # standard error of the difference: sqrt(sd_a²/n_a + sd_b²/n_b)
    df: float           # Welch-Satterthwaite degrees of freedom
    t: float
    lo: float
    hi: float
    confidence: float
    verdict: str


def as_values(x, name):
    """x as a 1-D float array, refusing NaN and infinities."""
    values = np.asarray(x, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"{name}: expected one number per seed (1-D), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} holds NaN or infinite values: {values.tolist()}")
    return values


def aligned(a, b):
    """a and b as two arrays in the same seed order. Two pandas Series are aligned
    by their index (the seeds), which must hold the same seeds, each once."""
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        for side, s in (("a", a), ("b", b)):
            if s.index.has_duplicates:
                raise ValueError(f"{side} has seeds that occur more than once: "
                                 f"{sorted(set(s.index[s.index.duplicated()]))}")
        only_a, only_b = set(a.index) - set(b.index), set(b.index) - set(a.index)
        if only_a or only_b:
            raise ValueError(f"the two sides do not have the same seeds: only in a "
                             f"{sorted(only_a)}, only in b {sorted(only_b)}")
        b = b.loc[a.index]
    a, b = as_values(a, "a"), as_values(b, "b")
    if len(a) != len(b):
        raise ValueError(f"a paired comparison needs one b per a: got {len(a)} and {len(b)}")
    return a, b


def quantile(confidence, df):
    """The two-sided t quantile: t(1 - (1 - confidence)/2, df)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return float(scipy_stats.t.ppf(1 - (1 - confidence) / 2, df))


def decimals(mean, lo, hi, scale):
    """How many decimals show the interval: one significant digit of its half-width,
    at least one decimal, and enough that no endpoint or mean that is not 0 reads 0."""
    half = (hi - lo) / 2 * scale
    digits = 1 if half <= 0 else max(1, -math.floor(math.log10(half)))
    while digits < 6 and any(v != 0 and round(v * scale, digits) == 0 for v in (mean, lo, hi)):
        digits += 1
    return digits


def number(value, digits):
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text  # never "-0.0"


def sentence(mean, lo, hi, runs, names=("A", "B"), scale=100, unit="points",
             confidence=0.95, words=("ahead of", "behind"), digits=None):
    """The verdict of an interval [lo, hi] for the difference A - B, in words.

    runs: how many seeds, in words ("5 seeds"). scale and unit: how to show the
    numbers (accuracy fractions as percentage points by default; scale=1,
    unit="nats" for a loss). words: what A is when the difference is positive and
    negative (for a loss, e.g. ("higher than", "lower than")). An interval that
    touches 0 includes it."""
    name_a, name_b = names
    digits = decimals(mean, lo, hi, scale) if digits is None else digits
    unit = f" {unit}" if unit else ""
    level = f"{100 * confidence:g} %"
    interval = f"[{number(lo * scale, digits)}, {number(hi * scale, digits)}]"
    if direction(lo, hi) == 0:
        return (f"no measurable difference between {name_a} and {name_b} "
                f"({level} interval {interval}{unit} includes 0, {runs})")
    word = words[0] if direction(lo, hi) > 0 else words[1]
    size = number(abs(mean) * scale, digits)
    return f"{name_a} is {word} {name_b} by {size}{unit} ({level} interval {interval}, {runs})"


def paired(a, b, confidence=0.95, names=("A", "B"), scale=100, unit="points",
           words=("ahead of", "behind"), digits=None):
    """Compare A and B seed by seed: a[i] and b[i] come from the same seed.

    Why pair: dl.sweep gives models with the same seed the same initialization
    and data order (common random numbers). The luck of a seed that both share
    cancels in the difference a - b, so what is left is mostly the effect of the
    setting. a and b: sequences, arrays or pandas Series of one result per seed
    in the same seed order; when both are Series, they are aligned by their
    index (the seeds) instead, and must hold the same seeds. Returns a Paired whose
    interval is mean(d) ± t(n - 1)·sd(d)/sqrt(n), and whose verdict is
    generated from that interval (see `sentence` for names, scale, unit, words).
    """
    a, b = aligned(a, b)
    n = len(a)
    if n < 2:
        raise ValueError(f"a paired comparison needs at least 2 seeds, got {n}")
    d = a - b
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    t = quantile(confidence, n - 1)
    lo, hi = mean - t * se, mean + t * se
    verdict = sentence(mean, lo, hi, f"{n} seeds", names, scale, unit, confidence, words,
                       digits)
    return Paired(n, mean, sd, se, n - 1, t, lo, hi, confidence, verdict)


def welch(a, b, confidence=0.95, names=("A", "B"), scale=100, unit="points",
          words=("ahead of", "behind"), digits=None):
    """Compare A and B from runs that are not paired (no seeds in common),
    with Welch's interval: mean(a) - mean(b) ± t(df)·se, where
    se = sqrt(sd_a²/n_a + sd_b²/n_b) and df is the Welch-Satterthwaite
    approximation. Use it only when the runs really are unpaired: on paired
    runs it ignores the shared luck of each seed, and its interval is wider."""
    a, b = as_values(a, "a"), as_values(b, "b")
    n_a, n_b = len(a), len(b)
    if min(n_a, n_b) < 2:
        raise ValueError(f"Welch's interval needs at least 2 runs of each setting, "
                         f"got {n_a} and {n_b}")
    var_a, var_b = a.var(ddof=1) / n_a, b.var(ddof=1) / n_b
    se = math.sqrt(var_a + var_b)
    if se > 0:
        df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    else:  # no spread at all: the formula is 0/0; use the pooled df
        df = n_a + n_b - 2
    mean = float(a.mean() - b.mean())
    t = quantile(confidence, df)
    lo, hi = mean - t * se, mean + t * se
    runs = f"{n_a} seeds each" if n_a == n_b else f"{n_a} and {n_b} seeds"
    verdict = sentence(mean, lo, hi, f"{runs}, unpaired", names, scale, unit, confidence,
                       words, digits)
    return Welch(n_a, n_b, mean, float(a.std(ddof=1)), float(b.std(ddof=1)), se, float(df),
                 t, lo, hi, confidence, verdict)


def select(table, chosen, by):
    """The rows of `table` that `chosen` picks: a dict {column: value} (every column
    must equal its value), or a single value of the column `by`."""
    chosen = chosen if isinstance(chosen, dict) else {by: chosen}
    keep = pd.Series(True, index=table.index)
    for column, value in chosen.items():
        if column not in table.columns:
            raise ValueError(f"the table has no column {column!r}; it has {list(table.columns)}")
        keep &= table[column].map(lambda v, value=value: v == value).astype(bool)
    rows = table[keep]
    if rows.empty:
        raise ValueError(f"no rows with {chosen}; the values there are "
                         f"{ {c: sorted(set(table[c]), key=str) for c in chosen} }")
    return rows


def describe(chosen, by):
    """A default name for one side: 'p1=0.5, p2=0' or 'setting 1'."""
    if isinstance(chosen, dict):
        return ", ".join(f"{column}={value:g}" if isinstance(value, float)
                         else f"{column}={value}" for column, value in chosen.items())
    return f"{by} {chosen}"


def per_seed(table, chosen, by, value, epoch):
    """One side as a Series of `value` indexed by seed, at `epoch` (None: the last
    epoch of these rows)."""
    rows = select(table, chosen, by)
    if "setting" in rows.columns and rows.setting.nunique() > 1:
        raise ValueError(f"{chosen} matches {rows.setting.nunique()} settings "
                         f"({sorted(set(rows.setting))}); add columns to pick one")
    if "epoch" in rows.columns:
        at = rows.epoch.max() if epoch is None else epoch
        rows = rows[rows.epoch == at]
        if rows.empty:
            raise ValueError(f"{chosen} has no rows at epoch {at}")
    if rows.seed.duplicated().any():
        raise ValueError(f"{chosen} has more than one row per seed; add columns to pick one")
    return rows.set_index("seed")[value]


def compare(table, a, b, value="test_acc", by="setting", epoch=None, names=None, **options):
    """Compare two settings of a dl.sweep table, paired by seed.

    a, b: which rows make each side, either a dict of column values, e.g.
    compare(table, a={"p1": 0.5}, b={"p1": 0.0}), or one value of the column
    `by`, e.g. compare(table, 1, 0) for settings 1 and 0. Each side must be one
    setting. value: the column to compare (test_acc by default). epoch: which
    epoch; None takes each side's last epoch. names: the two names for the
    sentence (by default they are made from a and b). Other options go to
    `paired` (confidence, scale, unit, words, digits). Returns paired(...) of the
    two Series of per-seed values, which refuses sides without the same seeds.
    """
    side_a = per_seed(table, a, by, value, epoch)
    side_b = per_seed(table, b, by, value, epoch)
    names = names or (describe(a, by), describe(b, by))
    return paired(side_a, side_b, names=names, **options)
