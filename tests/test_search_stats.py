"""The arithmetic behind benchmarks/search_quality.py's table (benchmarks/_search_stats.py)."""

import math
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import _search_stats as st  # noqa: E402


def _trial(end, value, lr=1e-3):
    return {"end_s": end, "value": value, "params": {"initial_lr": lr}}


def test_pick_changes_follow_time_skip_pruned_and_keep_ties_earlier():
    trials = [_trial(5, 0.80, 1), _trial(2, 0.70, 2), _trial(7, None, 3), _trial(9, 0.80, 4), _trial(11, 0.85, 5)]
    picks = st.pick_changes(trials)
    assert [p["params"]["initial_lr"] for p in picks] == [2, 1, 5]
    assert [p["params"]["initial_lr"] for p in st.pick_changes(trials, maximize=False)] == [2]
    assert st.pick_changes([_trial(1, None), _trial(2, math.nan)]) == []


def test_anytime_curve_lookups():
    curve = [(10.0, 0.80), (30.0, 0.84), (50.0, 0.83)]
    assert st.score_at(curve, 5) is None
    assert st.score_at(curve, 10) == 0.80 and st.score_at(curve, 49.9) == 0.84 and st.score_at(curve, 99) == 0.83
    assert st.time_to_reach(curve, 0.84) == 30.0
    assert st.time_to_reach(curve, 0.90) == math.inf
    assert st.anytime_mean([curve, [(20.0, 0.90)]], 15) == (0.80, 1)
    assert st.anytime_mean([curve, [(20.0, 0.90)]], 30) == (pytest.approx(0.87), 2)


def test_paired_differences_wins_and_a_bootstrap_interval_that_covers_the_mean():
    result = st.paired([0.85, 0.86, 0.84, 0.80], [0.84, 0.86, 0.85, 0.78])
    assert result["diffs"] == pytest.approx([0.01, 0.0, -0.01, 0.02])
    assert result["mean"] == pytest.approx(0.005) and result["wins"] == 2.5 and result["n"] == 4
    assert -0.01 <= result["low"] < result["mean"] < result["high"] <= 0.02
    # Every seed the same difference: no doubt left, the interval is that difference.
    assert st.bootstrap_mean_interval([0.02, 0.02, 0.02]) == pytest.approx((0.02, 0.02))
    with pytest.raises(ValueError):
        st.paired([0.8], [0.8, 0.9])


def test_binomial_standard_error_of_a_test_score():
    assert st.binomial_se(0.87, 500) == pytest.approx(0.015, abs=5e-4)
    assert st.binomial_se(0.87, 300) == pytest.approx(0.0194, abs=5e-4)


def test_time_ratio_counts_a_seed_the_peer_never_reached_at_a_bound_not_by_leaving_it_out():
    from _search_table import _median_time_ratio

    walls = {s: {"wall_s": 50.0} for s in range(4)}
    mine = {0: 10.0, 1: 10.0, 2: 20.0, 3: math.inf}
    theirs = {0: 40.0, 1: math.inf, 2: math.inf, 3: 30.0}
    # seed 0: 0.25; seeds 1 and 2: only mine reached, at most 10/50 and 20/50; seed 3: only theirs, infinite
    assert _median_time_ratio({}, walls, mine, theirs, [0, 1, 2, 3]) == pytest.approx((0.25 + 0.4) / 2)
    assert _median_time_ratio({}, walls, {0: math.inf}, {0: math.inf}, [0]) is None, "neither reached: no ratio"
