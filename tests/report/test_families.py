"""Reports of studies that searched the newer schedule families (one_cycle, wsd, cosine_restarts,
polynomial, the min_lr_ratio floor): tables, curves, importances and best_config.yaml."""

import numpy as np
import optuna
import pytest
import yaml

from sweep import attrs
from sweep.config import SCHEDULES, SearchConfig
from sweep.report.analysis import importance, stats
from sweep.report.data.collect import collect
from sweep.report.findings.summary import describe
from sweep.report.render.page import top_table
from sweep.report.write import best_config_yaml
from sweep.search.space import space_from_config, suggest_params
from sweep.training.params import parse_params
from sweep.training.schedule_math import learning_rates
from tests.fake_study import config_dict

TOTAL = 40  # optimizer steps per trial: 4 epochs of 10


@pytest.fixture(scope="module")
def study():
    """60 complete trials over all nine families; the value favours one_cycle and a small pct_start."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    space = space_from_config(SearchConfig(schedules=list(SCHEDULES)))
    study.set_user_attr(attrs.CONFIG, config_dict("families", 4))
    study.set_user_attr(attrs.SEARCH_SPACE, space)
    study.set_user_attr(attrs.NUM_TRAIN, 320)
    for _ in range(60):
        trial = study.ask()
        params = suggest_params(trial, space)
        trial.set_user_attr(attrs.TOTAL_STEPS, TOTAL)
        value = 0.8 - 0.01 * abs(np.log10(params.initial_lr) + 2.5)
        if params.schedule == "one_cycle":
            value += 0.1 - 0.1 * params.pct_start
        study.tell(trial, value)
    return study


def test_best_config_yaml_holds_the_familys_parameters_and_retrains(study, tmp_path):
    data = collect(study)
    assert data.best_params == study.best_params  # pct_start and min_lr_ratio included
    assert data.best_params["schedule"] == "one_cycle" and "pct_start" in data.best_params
    (tmp_path / "best_config.yaml").write_text(best_config_yaml(data))
    assert parse_params(str(tmp_path / "best_config.yaml")).to_dict() == {**study.best_params}
    assert f"pct_start {study.best_params['pct_start']:.2f}" in describe(data.best_params)


def test_lr_curves_draw_each_family_from_its_own_parameters(study):
    data = collect(study)
    trials = {t.number: t for t in study.trials}
    families = {trials[n].params["schedule"] for n in data.lr_curves}
    assert families == set(SCHEDULES)  # the top five, then the best of every other family
    assert set(data.top["number"]) <= set(data.lr_curves)
    for number, (x, lr) in data.lr_curves.items():
        steps = np.round(x * 10).astype(int)  # x is in epochs of 10 steps
        np.testing.assert_allclose(lr, learning_rates(trials[number].params, TOTAL, steps), rtol=1e-12)
    one_cycle = next(n for n in data.lr_curves if trials[n].params["schedule"] == "one_cycle")
    lr = data.lr_curves[one_cycle][1]
    assert 0 < lr.argmax() < len(lr) - 1 and lr[-1] < lr.max() / 5  # it rises, then falls


def test_top_table_and_importances_cover_the_family_parameters(study):
    data = collect(study)
    table = top_table(data)
    column = table.columns.index("schedule parameters")
    assert all("pct_start" in row[column] for row in table.rows if row[3] == "one_cycle")
    ranked = importance.ranked(data.importance_table, "one_cycle")
    assert "pct_start" in ranked  # scored within the family's own trials
    row = data.importance_table[(data.importance_table["scope"] == "cosine_restarts")
                                & (data.importance_table["parameter"] == "t_mul")]
    assert row.empty or "one value only" in row["note"].iloc[0]  # fixed in the config: never ranked


def test_trial_params_reads_every_family_column(study):
    data = collect(study)
    for _, row in data.trials.iterrows():
        assert stats.trial_params(row) == study.trials[int(row["number"])].params
    assert yaml.safe_load(best_config_yaml(data))["params"]["schedule"] == "one_cycle"
