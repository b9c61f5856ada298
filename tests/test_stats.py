"""The inference rule: t-intervals checked by hand, pairing, sentences, errors, compare()."""
import math
import re

import numpy as np
import pandas as pd
import pytest

import dropout_lab as dl
from dropout_lab import stats

NUMBER = r"-?\d+\.\d+"
SENTENCE = re.compile(
    rf"^(?:(?P<a>.+) is (?P<word>ahead of|behind) (?P<b>.+) by (?P<size>\d+\.\d+) points "
    rf"\(95 % interval \[(?P<lo>{NUMBER}), (?P<hi>{NUMBER})\], (?P<n>\d+) seeds\)"
    rf"|no measurable difference between (?P<a0>.+) and (?P<b0>.+) "
    rf"\(95 % interval \[(?P<lo0>{NUMBER}), (?P<hi0>{NUMBER})\] points includes 0, "
    rf"(?P<n0>\d+) seeds\))$")


def test_paired_interval_with_four_degrees_of_freedom_by_hand():
    # d = 1..5: mean 3, sd sqrt(2.5), se sqrt(2.5/5); a t-table gives t(0.975, 4) = 2.776
    a, b = [11, 12, 13, 14, 15], [10, 10, 10, 10, 10]
    result = dl.paired(a, b, scale=1, unit="")
    half = 2.776 * math.sqrt(2.5 / 5)
    assert (result.n, result.df) == (5, 4)
    assert result.mean == pytest.approx(3)
    assert result.sd == pytest.approx(math.sqrt(2.5))
    assert result.t == pytest.approx(2.776, abs=5e-4)
    assert (result.lo, result.hi) == pytest.approx((3 - half, 3 + half), abs=1e-3)


def test_paired_interval_with_two_degrees_of_freedom_by_hand():
    # d = 0, 1, 2: mean 1, sd 1; t(0.975, 2) = 4.303, so the interval is 1 ± 4.303/sqrt(3)
    result = dl.paired([0.0, 1.0, 2.0], [0.0, 0.0, 0.0], scale=1, unit="")
    assert result.t == pytest.approx(4.303, abs=5e-4)
    half = 4.303 / math.sqrt(3)
    assert (result.lo, result.hi) == pytest.approx((1 - half, 1 + half), abs=1e-3)
    assert result.verdict.startswith("no measurable difference")


def test_a_wider_confidence_gives_a_wider_interval():
    a, b = [3.0, 4.0, 6.0, 5.0], [1.0, 1.5, 2.0, 2.0]
    widths = [dl.paired(a, b, confidence=c).hi - dl.paired(a, b, confidence=c).lo
              for c in (0.8, 0.9, 0.95, 0.99)]
    assert widths == sorted(widths) and len(set(widths)) == 4
    assert "99 % interval" in dl.paired(a, b, confidence=0.99).verdict


def test_welch_by_hand():
    # a: mean 2, var 1, n 3; b: mean 5, var 20/3, n 4. se² = 1/3 + 5/3 = 2;
    # df = 2² / ((1/3)²/2 + (5/3)²/3) = 4.0755, so t lies between t(.975, 5) = 2.571
    # and t(.975, 4) = 2.776
    result = dl.welch([1, 2, 3], [2, 4, 6, 8], scale=1, unit="")
    assert (result.n_a, result.n_b) == (3, 4)
    assert result.mean == pytest.approx(-3)
    assert result.se == pytest.approx(math.sqrt(2))
    assert result.df == pytest.approx(4 / ((1 / 3) ** 2 / 2 + (5 / 3) ** 2 / 3))
    assert 2.571 < result.t < 2.776
    assert (result.lo, result.hi) == pytest.approx((-3 - result.t * math.sqrt(2),
                                                    -3 + result.t * math.sqrt(2)))
    assert result.verdict.endswith("(95 % interval [-6.9, 0.9] includes 0, 3 and 4 seeds, "
                                   "unpaired)")
    assert result.direction == 0 and dl.welch([9, 10, 11], [1, 2, 3]).direction == 1


def test_pairing_sees_what_an_unpaired_interval_cannot():
    # Each seed moves both settings by the same large amount (a shared seed effect of
    # several points); the setting adds about one point. Ignoring the pairing, the
    # seed effect swamps the difference; paired, it cancels.
    seed_effect = np.array([0.0, 0.03, -0.02, 0.05, -0.04])
    b = 0.80 + seed_effect
    a = b + np.array([0.010, 0.012, 0.008, 0.011, 0.009])
    with_pairs = dl.paired(a, b, names=("dropout", "no dropout"))
    without = dl.welch(a, b, names=("dropout", "no dropout"))
    assert with_pairs.lo > 0
    assert without.lo <= 0 <= without.hi
    assert with_pairs.mean == pytest.approx(without.mean)
    assert with_pairs.verdict.startswith("dropout is ahead of no dropout by 1.0 points")
    assert without.verdict.startswith("no measurable difference between dropout and no")


def test_sentences_ahead_behind_and_no_difference():
    # d = 1, 2, 3, 2, 2 points: mean 2, sd sqrt(0.5), half-width 2.776*sqrt(0.1) = 0.88
    a = np.array([0.81, 0.82, 0.83, 0.82, 0.82])
    b = np.full(5, 0.80)
    assert (dl.paired(a, b, names=("dropout 0.5", "no dropout")).verdict ==
            "dropout 0.5 is ahead of no dropout by 2.0 points (95 % interval [1.1, 2.9], "
            "5 seeds)")
    assert (dl.paired(b, a, names=("no dropout", "dropout 0.5")).verdict ==
            "no dropout is behind dropout 0.5 by 2.0 points (95 % interval [-2.9, -1.1], "
            "5 seeds)")
    # two seeds: d = 1 and 3 points, t(0.975, 1) = 12.71, so the interval is huge
    assert (dl.paired([0.81, 0.83], [0.80, 0.80]).verdict ==
            "no measurable difference between A and B (95 % interval [-10.7, 14.7] points "
            "includes 0, 2 seeds)")


def test_a_loss_in_its_own_units_and_words():
    result = dl.paired([0.40, 0.42, 0.41], [0.30, 0.31, 0.30], names=("plain", "dropout"),
                       scale=1, unit="nats", words=("higher than", "lower than"))
    assert result.verdict.startswith("plain is higher than dropout by 0.11 nats (95 %")


def test_an_interval_that_touches_zero_includes_it():
    assert stats.sentence(0.01, 0.0, 0.02, "5 seeds").startswith("no measurable difference")
    assert stats.sentence(-0.01, -0.02, 0.0, "5 seeds").startswith("no measurable difference")
    same = dl.paired([0.8, 0.9, 0.7], [0.8, 0.9, 0.7])   # every difference is 0
    assert (same.lo, same.hi) == (0, 0) and same.direction == 0
    assert stats.direction(0.0, 0.02) == stats.direction(-0.02, 0.0) == 0
    assert "[0.0, 0.0] points includes 0" in same.verdict


def test_small_differences_are_shown_with_enough_decimals():
    # a difference of 0.04 points with a tiny spread: it must not print as "0.0"
    a = 0.8 + np.array([4.0, 4.1, 3.9, 4.0]) * 1e-4
    result = dl.paired(a, np.full(4, 0.8))
    assert result.lo > 0
    match = SENTENCE.match(result.verdict)
    assert float(match["size"]) > 0 and float(match["lo"]) > 0


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_every_sentence_is_well_formed_and_agrees_with_its_interval(n):
    rng = np.random.default_rng(n)
    for trial in range(200):
        shift, spread = rng.choice([0.0, 1e-3, 1e-2, 0.1]), rng.choice([1e-4, 1e-2, 0.2])
        b = rng.uniform(0.6, 0.9, n)
        a = b + shift * rng.choice([-1, 1]) + spread * rng.standard_normal(n)
        result = dl.paired(a, b, names=("dropout 0.5", "no dropout"))
        match = SENTENCE.match(result.verdict)
        assert match, result.verdict
        assert "nan" not in result.verdict.lower() and "None" not in result.verdict
        assert "-0.0" not in re.sub(r"-0\.0*[1-9]", "", result.verdict)
        if match["word"]:
            assert int(match["n"]) == n and match["a"] == "dropout 0.5"
            assert (match["word"] == "ahead of") == (result.lo > 0)
            assert result.lo > 0 or result.hi < 0
            assert result.direction == (1 if match["word"] == "ahead of" else -1)
            assert 0 not in (float(match["lo"]), float(match["hi"]), float(match["size"]))
            digits = len(match["lo"].split(".")[1])
            assert float(match["lo"]) == pytest.approx(100 * result.lo, abs=10**-digits)
        else:
            assert int(match["n0"]) == n
            assert result.lo <= 0 <= result.hi
            assert result.direction == 0


@pytest.mark.parametrize("a, b, message", [
    ([0.8], [0.7], "at least 2 seeds"),
    ([], [], "at least 2 seeds"),
    ([0.8, float("nan"), 0.7], [0.7, 0.7, 0.7], "NaN"),
    ([0.8, 0.7], [0.7, float("inf")], "NaN or infinite"),
    ([0.8, 0.7, 0.9], [0.7, 0.7], "one b per a"),
    ([[0.8, 0.7]], [[0.7, 0.7]], "1-D"),
])
def test_paired_refuses_what_it_cannot_compare(a, b, message):
    with pytest.raises(ValueError, match=message):
        dl.paired(a, b)


def test_welch_refuses_fewer_than_two_runs_and_nan():
    with pytest.raises(ValueError, match="at least 2 runs"):
        dl.welch([0.8, 0.9], [0.7])
    with pytest.raises(ValueError, match="NaN"):
        dl.welch([0.8, float("nan")], [0.7, 0.6])
    with pytest.raises(ValueError, match="confidence"):
        dl.welch([0.8, 0.9], [0.7, 0.6], confidence=95)


def test_series_are_aligned_by_seed_and_mismatched_seeds_refused():
    a = pd.Series([0.81, 0.83, 0.82], index=[0, 1, 2])
    b = pd.Series([0.80, 0.81, 0.79], index=[2, 0, 1])   # same seeds, another order
    by_position = dl.paired(a.values, b.loc[[0, 1, 2]].values)
    assert dl.paired(a, b).mean == pytest.approx(by_position.mean)
    assert dl.paired(a, b).sd == pytest.approx(by_position.sd)
    with pytest.raises(ValueError, match=r"only in a \[2\], only in b \[3\]"):
        dl.paired(a, pd.Series([0.8, 0.8, 0.8], index=[0, 1, 3]))
    with pytest.raises(ValueError, match="more than once"):
        dl.paired(a, pd.Series([0.8, 0.8, 0.8], index=[0, 1, 1]))


@pytest.fixture(scope="module")
def table(small_data):
    settings = [{"dropout": (0, 0), "epochs": 2, "hidden": (32, 32), "n_train": 2000},
                {"dropout": (0.5, 0.5), "epochs": 2, "hidden": (32, 32), "n_train": 2000}]
    return dl.sweep(settings, 3, small_data, device="cpu", progress=False)


def final_by_seed(table, setting, epoch=2):
    rows = table[(table.setting == setting) & (table.epoch == epoch)]
    return rows.set_index("seed").test_acc


def test_compare_pairs_a_real_sweep_by_seed_at_the_last_epoch(table):
    expected = dl.paired(final_by_seed(table, 1), final_by_seed(table, 0))
    by_columns = dl.compare(table, a={"p1": 0.5}, b={"p1": 0.0})
    by_setting = dl.compare(table, 1, 0)
    for result in (by_columns, by_setting):
        assert result.n == 3
        assert result.mean == pytest.approx(expected.mean)
        assert (result.lo, result.hi) == pytest.approx((expected.lo, expected.hi))
    assert "p1=0.5" in by_columns.verdict and "p1=0" in by_columns.verdict
    assert "setting 1" in by_setting.verdict
    named = dl.compare(table, {"p1": 0.5, "p2": 0.5}, {"p1": 0.0},
                       names=("dropout 0.5", "no dropout"))
    assert SENTENCE.match(named.verdict)


def test_compare_at_a_given_epoch_and_of_another_column(table):
    first = dl.compare(table, 1, 0, epoch=1, value="train_loss", scale=1, unit="nats")
    expected = (table[table.epoch == 1].pivot(index="seed", columns="setting",
                                              values="train_loss").pipe(lambda t: t[1] - t[0]))
    assert first.mean == pytest.approx(expected.mean())
    assert first.sd == pytest.approx(expected.std())


def test_compare_refuses_ambiguous_empty_and_unpaired_selections(table):
    with pytest.raises(ValueError, match="no rows with"):
        dl.compare(table, {"p1": 0.2}, {"p1": 0.0})
    with pytest.raises(ValueError, match="no column"):
        dl.compare(table, {"rate": 0.5}, {"p1": 0.0})
    with pytest.raises(ValueError, match="matches 2 settings"):
        dl.compare(table, {"hidden": (32, 32)}, {"p1": 0.0})
    with pytest.raises(ValueError, match="no rows at epoch 7"):
        dl.compare(table, 1, 0, epoch=7)
    missing = table[~((table.setting == 0) & (table.seed == 2))]
    with pytest.raises(ValueError, match=r"only in a \[2\]"):
        dl.compare(missing, 1, 0)
