import json
import math

import numpy as np
import pytest

from sweep.search import lr_finder
from sweep.search.lr_finder import DivergenceWatch, LRFinderResult, exponential_lrs, summarize
from sweep.search.lr_rules import learning_onset, minimum, smooth, steep, valley

LOG_GRID = 10.0 ** np.linspace(-6, 0, 61)  # 1e-6 .. 1, a tenth of a decade apart; index 30 is 1e-3


# --- smoothing -----------------------------------------------------------------------------


def test_smooth_is_bias_corrected():
    # Without the correction the first value would be (1 - beta) * 1 = 0.5.
    assert smooth([1.0, 2.0], 0.5) == pytest.approx([1.0, (0.25 + 1.0) / 0.75])


def test_smooth_of_a_constant_is_that_constant_from_the_first_step():
    assert smooth([2.3] * 50, 0.98) == pytest.approx([2.3] * 50)


def test_smooth_with_zero_beta_is_the_identity():
    assert smooth([3.0, 1.0, 2.0], 0.0) == pytest.approx([3.0, 1.0, 2.0])


def test_smooth_carries_a_nan_forward():
    out = smooth([1.0, math.nan, 1.0], 0.9)
    assert math.isfinite(out[0]) and math.isnan(out[1]) and math.isnan(out[2])


# --- suggestions on curves with known answers ------------------------------------------


def test_valley_is_the_middle_of_the_longest_descent():
    lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    assert valley(lrs, [5, 4, 3, 2, 1, 2, 3]) == 1e-3  # descent 0..4, middle 2


def test_valley_bridges_noise_bumps_inside_a_descent():
    lrs = list(10.0 ** np.arange(8))
    # 5 4 _ 3 2 1 is one descent of six points (indexes 0..5) despite the bump at 2.
    assert valley(lrs, [5, 4, 4.5, 3, 2, 1, 3, 4]) == lrs[2]


def test_valley_prefers_the_longer_of_two_descents():
    lrs = list(10.0 ** np.arange(9))
    # 3 2 is short; 9 8 7 6 5 4 (indexes 2..7) is the longest descent: middle index 4.
    assert valley(lrs, [3, 2, 9, 8, 7, 6, 5, 4, 10]) == lrs[4]


def test_steep_finds_the_steepest_descent_on_a_log_axis():
    losses = 2.0 - np.tanh(2.0 * (np.log10(LOG_GRID) + 3.0))  # steepest at 1e-3
    assert steep(LOG_GRID, losses) == pytest.approx(1e-3)


def test_minimum_is_a_tenth_of_the_lowest_point():
    losses = (np.log10(LOG_GRID) + 2.0) ** 2  # lowest at 1e-2
    assert minimum(LOG_GRID, losses) == pytest.approx(1e-3)


def test_minimum_ignores_non_finite_losses():
    assert minimum([1e-3, 1e-2, 1e-1], [2.0, 1.0, math.nan]) == pytest.approx(1e-3)


def test_learning_onset_is_where_a_tenth_of_the_drop_is_done():
    losses = [2.0, 2.0, 1.95, 1.85, 1.5, 1.0, 3.0]  # drop 1.0: onset once <= 1.9
    assert learning_onset([1, 2, 3, 4, 5, 6, 7], losses) == 4


def test_exponential_lrs_rise_by_a_constant_factor():
    lrs = exponential_lrs(1e-7, 10.0, 9)
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10.0)
    assert np.diff(np.log10(lrs)) == pytest.approx([1.0] * 8)


# --- divergence and the result ------------------------------------------------------------


def test_divergence_watch_rules():
    watch = DivergenceWatch(4.0)
    assert not any(watch.diverged(v) for v in [10.0, 9.0, 1.0, 3.9])
    assert watch.diverged(4.1)  # 4 x best, though still below the first loss
    assert DivergenceWatch(4.0).diverged(math.inf)
    undone = DivergenceWatch(4.0)
    assert not any(undone.diverged(v) for v in [2.3, 1.5, 2.0])
    assert undone.diverged(2.31)  # learned, then back above the untrained model's loss


def test_divergence_watch_does_not_fire_on_noise_before_learning():
    watch = DivergenceWatch(4.0)
    assert not any(watch.diverged(v) for v in [2.30, 2.25, 2.32, 2.28, 2.33])


def test_summarize_bounds_and_suggestions():
    lrs = list(LOG_GRID[:50])
    losses = list(2.0 - np.tanh(2.0 * (np.log10(lrs) + 3.0)))
    losses[-1] = 40.0  # the divergence step: excluded from the suggestions
    result = summarize(lrs, losses, smoothing=0.0, method="steep", end_lr=1.0, diverged_at=lrs[-1])
    assert result.suggestion == pytest.approx(1e-3)
    assert result.suggestions["steep"] == result.suggestion
    assert result.upper == lrs[-1] == result.diverged_at
    assert result.lower <= result.suggestion <= result.upper
    assert result.suggestions["minimum"] == pytest.approx(lrs[-2] / 10)
    assert result.num_steps == 50


def test_the_rules_skip_the_noisy_first_tenth_of_the_curve():
    """Seed 105 of the search benchmark: a few early batches happened to fall fast, and steep
    suggested start_lr itself, leaving the prior nothing of the search range."""
    lrs = list(LOG_GRID[:60])
    losses = list(2.0 - np.tanh(2.0 * (np.log10(lrs) + 3.0)))
    losses[1] = losses[0] - 3.0  # a steeper drop than anywhere later, inside the first tenth
    assert steep(lrs, losses) == lrs[0]  # the rule alone is fooled
    result = summarize(lrs, losses, smoothing=0.0, method="steep", end_lr=1.0)
    assert result.suggestion == pytest.approx(1e-3)
    assert result.lower <= result.suggestion  # the onset still reads the whole curve


def test_summarize_without_divergence_uses_end_lr_as_upper_bound():
    result = summarize([1e-3, 1e-2, 1e-1], [2.0, 1.0, 0.5], smoothing=0.0, method="minimum", end_lr=10.0)
    assert result.upper == 10.0 and result.diverged_at is None
    assert result.suggestion == pytest.approx(1e-2)


def test_summarize_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="valley, steep, minimum"):
        summarize([1e-3, 1e-2], [2.0, 1.0], smoothing=0.0, method="fastest", end_lr=1.0)


def test_result_round_trips_through_json_with_non_finite_losses():
    result = summarize([1e-3, 1e-2, 1e-1], [2.0, 1.0, math.nan], smoothing=0.5, method="valley",
                       end_lr=1.0, diverged_at=1e-1)
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    for key in ("method", "suggestion", "lower", "upper", "lrs", "losses", "seconds"):
        assert key in d
    assert d["losses"][-1] is None
    back = LRFinderResult.from_dict(d)
    assert back.suggestion == result.suggestion and back.lrs == result.lrs
    assert math.isnan(back.losses[-1]) and back.losses[:2] == [2.0, 1.0]


# --- the range test on a tiny model --------------------------------------------------------


@pytest.fixture
def tiny_data(tiny_config):
    from sweep.training.data import load_dataset

    return load_dataset(tiny_config.data, 0)


def _with_finder(config, **finder):
    from sweep.config import config_from_dict

    raw = config.to_dict()
    raw["lr_finder"].update(finder)
    return config_from_dict(raw)


def test_range_test_raises_lr_exponentially_and_stops_on_divergence(tiny_config, tiny_data):
    config = _with_finder(tiny_config, start_lr=1e-5, end_lr=1e3, num_steps=60, smoothing=0.5)
    result = lr_finder.run_range_test(config, tiny_data, seed=0)
    assert 10 < result.num_steps < 60  # Adam at LR 1e3 blows the tiny CNN up
    assert result.diverged_at == pytest.approx(result.lrs[-1]) == pytest.approx(result.upper)
    ratios = np.diff(np.log10(result.lrs))
    assert ratios == pytest.approx([8.0 / 59] * (result.num_steps - 1))
    assert result.lower <= result.suggestion <= result.upper
    assert result.suggestions["minimum"] < result.diverged_at
    assert len(result.losses) == len(result.smoothed) == result.num_steps
    assert result.seconds > 0 and result.batch_size == 32


def test_range_test_records_each_batchs_own_loss(tiny_config, tiny_data, monkeypatch):
    """At a negligible LR the recorded losses are the batches' own, not a running mean."""
    import keras

    import sweep.training.model

    built = []
    real_build = sweep.training.model.build_model
    monkeypatch.setattr(sweep.training.model, "build_model", lambda *args, **kwargs: built.append(real_build(*args, **kwargs)) or built[-1])
    steps = 20  # more than one pass over the 320 training images (10 batches of 32)
    config = _with_finder(tiny_config, start_lr=1e-12, end_lr=2e-12, num_steps=steps, smoothing=0.0)
    result = lr_finder.run_range_test(config, tiny_data, seed=3)

    batches = lr_finder._batches(tiny_data.x_train, tiny_data.y_train, 32, np.random.default_rng(3))
    expected = []
    for _, (x, y) in zip(range(steps), batches):
        probs = built[0](x, training=False)
        expected.append(float(np.mean(keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(y, probs)))))
    assert result.losses == pytest.approx(expected, rel=1e-4)
    running_mean = np.cumsum(expected[:10]) / np.arange(1, 11)
    assert not np.allclose(result.losses[:10], running_mean, rtol=1e-3)


def test_range_test_is_reproducible(tiny_config, tiny_data):
    config = _with_finder(tiny_config, start_lr=1e-4, end_lr=1.0, num_steps=15)
    first = lr_finder.run_range_test(config, tiny_data, seed=5)
    second = lr_finder.run_range_test(config, tiny_data, seed=5)
    assert first.losses == pytest.approx(second.losses, rel=1e-5)


def test_lr_find_command_writes_json_and_png(write_config, tmp_path, monkeypatch, capsys):
    from sweep.cli import main

    config = write_config(
        "study: {name: tiny-lr}\n"
        "data: {source: synthetic, limit: 400, validation_fraction: 0.2}\n"
        "model: {filters: [8], dense_units: 32, dropout: 0.0}\n"
        "train: {batch_size: 32}\n"
        "lr_finder: {start_lr: 1.0e-5, end_lr: 1000.0, num_steps: 40, smoothing: 0.5, suggestion: minimum}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "lr-find", str(config)]) == 0
    saved = json.loads((tmp_path / "results" / "tiny-lr" / "lr_finder.json").read_text())
    assert saved["method"] == "minimum" and saved["suggestion"] == saved["suggestions"]["minimum"]
    assert saved["lower"] <= saved["suggestion"] <= saved["upper"] and len(saved["lrs"]) == len(saved["losses"])
    assert (tmp_path / "results" / "tiny-lr" / "lr_finder.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert f"suggested initial_lr {saved['suggestion']:.3g} (minimum)" in out


def test_lr_find_command_refuses_a_bad_config(write_config, tmp_path, monkeypatch, capsys):
    from sweep.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["lr-find", str(write_config("lr_finder: {suggestion: fastest}\n"))]) == 2
    assert "lr_finder.suggestion" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
