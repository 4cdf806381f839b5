"""How sure a report is: noise levels, intervals, verdicts, importances over conditional
parameters, edge-of-range evidence and the best trial's learning curve."""

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from sweep import attrs
from sweep.config import DEFAULT_SCHEDULES as SCHEDULES
from sweep.report.analysis import importance, uncertainty
from sweep.report.data.collect import collect, validation_size
from sweep.report.findings.summary import findings
from sweep.report.render.page import schedule_table
from tests.fake_study import config_dict

LR = FloatDistribution(1e-5, 1.0, log=True)
DISTS = {"initial_lr": LR, "schedule": CategoricalDistribution(SCHEDULES), "warmup_fraction": FloatDistribution(0, 0.3),
         "decay_rate": FloatDistribution(0.5, 0.99)}


def make_study(trials, *, num_validation=300, low=1e-5, high=1.0, epochs=4):
    """An in-memory sweep study of ``trials``: (schedule, initial_lr, value[, curve[, decay_rate]])."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(attrs.CONFIG, config_dict("u", epochs))
    study.set_user_attr(attrs.SEARCH_SPACE, {"initial_lr": {"low": low, "high": high}, "schedules": list(SCHEDULES)})
    if num_validation:
        study.set_user_attr(attrs.NUM_VALIDATION, num_validation)
    for schedule, lr, value, *rest in trials:
        curve = rest[0] if rest and rest[0] else [value - 0.05, value - 0.02, value - 0.01, value][-epochs:]
        params = {"initial_lr": lr, "schedule": schedule, "warmup_fraction": 0.0}
        if len(rest) > 1:
            params["decay_rate"] = rest[1]
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=value, params=params,
                                     distributions={k: DISTS[k] for k in params},
                                     intermediate_values={i + 1: v for i, v in enumerate(curve)}))
    return study


def texts(study):
    return [f.text for f in findings(collect(study))]


def test_binomial_standard_error_and_wilson_interval_match_closed_forms():
    assert uncertainty.binomial_se(0.5, 100) == pytest.approx(0.05)
    assert uncertainty.binomial_se(0.87, 300) == pytest.approx(math.sqrt(0.87 * 0.13 / 300))
    assert math.isnan(uncertainty.binomial_se(0.8, None))
    low, high = uncertainty.wilson_interval(0.5, 100)
    assert (low + high) / 2 == pytest.approx(0.5) and high - low == pytest.approx(2 * 0.0961, abs=0.002)
    assert uncertainty.wilson_interval(1.0, 300)[1] == pytest.approx(1.0) and uncertainty.wilson_interval(1.0, 300)[0] < 1.0


def test_expected_maximum_of_normals_matches_known_values():
    assert uncertainty.expected_max_normal(1) == 0.0
    assert uncertainty.expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-4)
    assert uncertainty.expected_max_normal(5) == pytest.approx(1.16296, abs=1e-3)


def test_schedules_within_noise_are_called_indistinguishable_not_a_winner():
    # The case: cosine's best of 6 leads constant's single trial by 5 of 300 images.
    study = make_study([("cosine", 3e-3, v) for v in (0.8733, 0.8567, 0.8567, 0.85, 0.85, 0.84)]
                       + [("constant", 2e-3, 0.8567)])
    found = texts(study)
    assert not any("leads" in t for t in found)
    verdict = next(t for t in found if "indistinguishable" in t)
    assert "cosine and constant" in verdict and "--repeats 3" in verdict and "medians" in verdict
    assert any("Noise level" in t and "300 validation images" in t and "0.019" in t for t in found)
    table = schedule_table(collect(study))
    assert "95% interval of best" in table.columns
    low, high = uncertainty.wilson_interval(0.8733, 300)
    assert table.rows[0][table.columns.index("95% interval of best")] == f"{low:.3f} to {high:.3f}"


def test_a_lead_larger_than_the_noise_names_the_winner():
    study = make_study([("cosine", 3e-3, 0.90), ("cosine", 3e-3, 0.89), ("constant", 2e-3, 0.70)])
    verdict = next(t for t in texts(study) if "leads" in t)
    assert verdict.startswith("cosine leads every other schedule type") and "constant, by 0.2000" in verdict
    # The same numbers with an unknown validation size fall back to the heuristic and say so.
    config = config_dict("u", 4)
    config["data"]["limit"] = None
    config["data"]["source"] = "idx"
    study = make_study([("cosine", 3e-3, 0.90), ("constant", 2e-3, 0.70)], num_validation=None)
    study.set_user_attr(attrs.CONFIG, config)
    assert any("noise level unknown" in t for t in texts(study))


def test_validation_size_is_stored_or_estimated_from_the_config_or_unknown():
    config = config_dict("u", 4)  # synthetic, limit 400, validation_fraction 0.2
    assert validation_size({attrs.NUM_VALIDATION: 123}, config) == (123, "stored")
    assert validation_size({}, config) == (80, "estimated from data.limit and data.validation_fraction")
    config["data"] |= {"source": "idx", "limit": None}
    assert validation_size({}, config) == (None, "unknown")


def test_selection_bias_is_estimated_from_the_trials_near_the_best():
    values = np.array([0.87, 0.865, 0.86, 0.70, 0.60])
    bias = uncertainty.selection_bias(values, 0.02)
    assert bias.contenders == 3 and bias.bias == pytest.approx(0.02 * uncertainty.expected_max_normal(3))
    study = make_study([("cosine", 3e-3, v) for v in values])
    assert any("biased upward by selection" in t and "3 trials lie within 2 standard errors" in t
               for t in texts(study))


def test_a_conditional_parameter_in_fewer_than_five_complete_trials_is_not_ranked():
    rng = np.random.default_rng(0)
    trials = [("cosine", float(10 ** rng.uniform(-4, -1)), float(rng.uniform(0.7, 0.9))) for _ in range(8)]
    trials += [("exponential", 1e-3, 0.8, None, 0.6), ("step", 2e-3, 0.85, None, 0.9)]
    table = importance.importances(make_study(trials).trials, "maximize")
    row = table[(table["scope"] == "all") & (table["parameter"] == "decay_rate")].iloc[0]
    assert row["trials"] == 2 and math.isnan(row["importance"]) and "too few trials" in row["note"]
    assert "decay_rate" not in importance.ranked(table)
    assert any("Not ranked" in t and "decay_rate (2)" in t for t in texts(make_study(trials)))
    # Per schedule: cosine has 8 complete trials, so its initial_lr is scored within it.
    assert set(table.loc[table["scope"] == "cosine", "parameter"]) == {"initial_lr", "warmup_fraction"}
    more = trials + [("exponential", 1e-3 * k, 0.8 + 0.01 * k, None, 0.5 + 0.1 * k) for k in range(1, 4)]
    assert "decay_rate" in importance.ranked(importance.importances(make_study(more).trials, "maximize"))


def test_edge_warning_looks_at_the_top_trials_and_the_trend_not_only_the_best():
    # Accuracy rises with the LR up to the upper bound; the best trial is mid-range, the
    # 2nd best sits at 94% of the log range (the case).
    trials = [("cosine", 10 ** x, 0.80 + 0.02 * (x + 4)) for x in (-4, -3.5, -3, -2.5)]
    trials += [("cosine", 10 ** -2.5, 0.90), ("cosine", 10 ** -2.15, 0.87), ("cosine", 10 ** -2.1, 0.865)]
    study = make_study(trials, low=1e-4, high=10 ** -2.0)
    warning = next(t for t in texts(study) if "upper edge" in t)
    assert "1 trial of the top 2 (#5)" in warning and "Better rates may lie above 1.00e-02" in warning
    peaked = make_study([("cosine", 10 ** x, v) for x, v in ((-4, 0.80), (-3.5, 0.85), (-3, 0.86), (-2.8, 0.84))],
                        low=1e-4, high=1e-2)
    assert not any("edge" in t for t in texts(peaked))


def test_the_best_trials_learning_curve_is_stated():
    peaked = make_study([("cosine", 3e-3, 0.8733, [0.85, 0.8733, 0.85, 0.8367]), ("cosine", 1e-3, 0.80)])
    text = next(t for t in texts(peaked) if t.startswith("Trial #0 peaked"))
    assert "epoch 2 of 4" in text and "0.0366 lower" in text and "likely land near its last epoch" in text
    flat = make_study([("cosine", 3e-3, 0.8733, [0.85, 0.8733, 0.87, 0.8667]), ("cosine", 1e-3, 0.80)])
    assert any("within one standard error" in t for t in texts(flat))
    rising = make_study([("cosine", 3e-3, 0.8733), ("cosine", 1e-3, 0.80)])
    assert any("best at its last epoch (4 of 4)" in t for t in texts(rising))


def test_a_test_split_order_among_validation_ties_is_not_called_a_broken_ranking():
    study = make_study([("cosine", 1e-3, 0.856), ("exponential", 2e-3, 0.856)])
    for trial, mean in ((0, 0.829), (1, 0.837)):
        study.set_user_attr(f"{attrs.EVALUATION_PREFIX}{trial}",
                            {"trial": trial, "mean": mean, "sd": 0.006, "runs": [[trial, mean, 0.5, 1.0]] * 3})
    found = texts(study)
    assert any("orders configurations that tie on validation" in t and "#1 (2nd on validation, 1st on test)" in t
               and "within the 95% seed noise" in t for t in found)
    assert not any("does not hold" in t for t in found)
