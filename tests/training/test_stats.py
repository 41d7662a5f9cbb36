"""The evaluation's statistics: intervals against known values, and the verdicts."""
import math

import numpy as np
import pytest

from rlhf.training import stats


def test_mean_interval_is_the_student_t_interval():
    figure = stats.mean_interval([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sd 1.29099, sem 0.645497, t(0.975, 3) = 3.182446
    assert figure["mean"] == 2.5 and figure["n"] == 4 and figure["method"] == "t"
    assert figure["low"] == pytest.approx(2.5 - 3.182446 * 0.645497, abs=1e-5)
    assert figure["high"] == pytest.approx(2.5 + 3.182446 * 0.645497, abs=1e-5)


def test_mean_interval_of_identical_values_is_that_value():
    assert stats.mean_interval([0.3, 0.3, 0.3])["low"] == pytest.approx(0.3)
    figure = stats.mean_interval([0.0] * 5)
    assert (figure["low"], figure["high"]) == (0.0, 0.0)
    assert stats.verdict(figure) == stats.NO_CHANGE


def test_one_value_has_a_mean_but_no_interval_and_shows_no_change():
    figure = stats.mean_interval([2.0])
    assert figure["mean"] == 2.0 and figure["low"] is None and figure["high"] is None
    assert stats.verdict(figure) == stats.NO_CHANGE


def test_no_values_is_not_measured():
    for figure in (stats.mean_interval([]), stats.bootstrap_interval([]), stats.wilson_interval(0, 0)):
        assert figure["mean"] is None and stats.verdict(figure) == stats.NOT_MEASURED


def test_bootstrap_interval_covers_the_mean_and_repeats_with_the_seed():
    values = np.random.default_rng(3).normal(0.6, 0.1, size=40)
    first = stats.bootstrap_interval(values, seed=7)
    assert first["low"] < values.mean() < first["high"]
    assert first == stats.bootstrap_interval(values, seed=7)
    # about the t interval's width for a sample this large
    t = stats.mean_interval(values)
    assert first["high"] - first["low"] == pytest.approx(t["high"] - t["low"], rel=0.25)


def test_bootstrap_interval_of_identical_values_is_that_value():
    figure = stats.bootstrap_interval([0.5] * 8)
    assert (figure["low"], figure["mean"], figure["high"]) == (0.5, 0.5, 0.5)
    assert stats.verdict(figure, 0.5) == stats.NO_CHANGE


def test_wilson_interval_matches_the_formula():
    k, n, z = 27, 32, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    figure = stats.wilson_interval(k, n)
    assert figure["mean"] == p and figure["n"] == n
    assert figure["low"] == pytest.approx(centre - half, abs=1e-9)
    assert figure["high"] == pytest.approx(centre + half, abs=1e-9)


def test_wilson_interval_of_all_correct_stays_inside_zero_one():
    figure = stats.wilson_interval(10, 10)
    assert figure["high"] == pytest.approx(1.0) and 0.6 < figure["low"] < 1.0


def test_win_fraction_counts_all_answer_pairs_and_ties_half():
    assert stats.win_fraction([2.0, 0.0], [1.0, 1.0]) == 0.5
    assert stats.win_fraction([3.0], [1.0, 2.0]) == 1.0
    assert stats.win_fraction([1.0, 1.0], [1.0, 1.0]) == 0.5
    assert stats.win_fraction([0.0], [1.0, 0.0]) == 0.25


@pytest.mark.parametrize("low, high, expected", [
    (0.1, 0.5, stats.GAIN), (-0.5, -0.1, stats.LOSS), (-0.1, 0.2, stats.NO_CHANGE), (0.0, 0.3, stats.NO_CHANGE)])
def test_verdict_is_gain_or_loss_only_when_the_interval_excludes_no_change(low, high, expected):
    assert stats.verdict({"mean": (low + high) / 2, "low": low, "high": high}) == expected


def test_verdict_of_a_win_rate_is_judged_against_one_half():
    assert stats.verdict({"mean": 0.6, "low": 0.52, "high": 0.7}, 0.5) == stats.GAIN
    assert stats.verdict({"mean": 0.55, "low": 0.45, "high": 0.65}, 0.5) == stats.NO_CHANGE
    assert stats.with_verdict({"mean": 0.3, "low": 0.2, "high": 0.4}, 0.5)["verdict"] == stats.LOSS
