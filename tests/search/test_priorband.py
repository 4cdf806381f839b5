"""The prior-aware multi-fidelity search: the sampler's mixture and decay, the promotion rule,
and both running a real study through sweep's worker."""

import math

import optuna
import pytest
from optuna.trial import TrialState

from sweep.config import config_from_dict
from sweep.search.priorband import (
    NoiseTolerantHalvingPruner,
    PriorBandSampler,
    promotable,
    rungs,
    source_weights,
)
from sweep.search.space import suggest_params

SPACE = {"initial_lr": {"low": 1e-5, "high": 1.0}, "schedules": ["constant", "exponential", "step", "cosine", "linear"],
         "decay_rate": {"low": 0.5, "high": 0.99}, "decay_steps": {"low": 50, "high": 5000},
         "warmup_fraction": {"low": 0.0, "high": 0.3}}
PRIOR = {"suggestion": 2e-3, "sigma_decades": 0.5}


def test_weights_sum_to_one_and_the_prior_decays_with_evidence():
    assert source_weights(0, has_incumbent=False) == {"prior": pytest.approx(0.8), "incumbent": 0.0, "uniform": 0.2}
    shares = [source_weights(n, has_incumbent=True)["prior"] for n in range(0, 40)]
    assert all(a > b for a, b in zip(shares, shares[1:]))  # strictly decaying
    for n in (0, 1, 5, 40):
        assert sum(source_weights(n, True).values()) == pytest.approx(1.0)
    at_beta = source_weights(5, True, beta=5.0)
    assert at_beta["prior"] == pytest.approx(at_beta["incumbent"])  # beta: where they weigh the same
    assert source_weights(95, True, beta=5.0)["prior"] == pytest.approx(0.8 * 5 / 100)
    with pytest.raises(ValueError, match="uniform"):
        source_weights(1, True, uniform=1.5)


def _run(sampler, n, values=None, enqueue=None):
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if enqueue:
        study.enqueue_trial(enqueue)
    sources = []
    for i in range(n):
        trial = study.ask()
        sources.append(sampler.source(study, study.trials[-1]))
        params = suggest_params(trial, SPACE)
        value = values(params) if values else 0.5
        study.tell(trial, value)
    return study, sources


def test_draws_stay_in_the_space_and_repeat_with_the_seed():
    a, _ = _run(PriorBandSampler(PRIOR, seed=3), 30, values=lambda p: -abs(math.log10(p.initial_lr) + 3))
    b, _ = _run(PriorBandSampler(PRIOR, seed=3), 30, values=lambda p: -abs(math.log10(p.initial_lr) + 3))
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    for t in a.trials:
        assert 1e-5 <= t.params["initial_lr"] <= 1.0 and 0.0 <= t.params["warmup_fraction"] <= 0.3
        assert ("decay_rate" in t.params) == (t.params["schedule"] in ("exponential", "step"))
        if "decay_steps" in t.params:
            assert 50 <= t.params["decay_steps"] <= 5000


def test_the_mixture_follows_its_weights_prior_first_then_the_incumbent():
    _, sources = _run(PriorBandSampler(PRIOR, seed=0, beta=2.0), 200)
    # Trial 0: no evidence, no incumbent: prior or uniform only.
    assert sources[0] in ("prior", "uniform")
    early, late = sources[1:21], sources[100:]
    assert early.count("prior") > late.count("prior") * len(early) / len(late) * 2
    # After 100 trials the prior holds 0.8 * 2 / 102 = 1.6 %; the uniform share stays 20 %.
    assert late.count("incumbent") / len(late) == pytest.approx(0.78, abs=0.1)
    assert late.count("uniform") / len(late) == pytest.approx(0.2, abs=0.1)
    _, without_prior = _run(PriorBandSampler(None, seed=0), 40)
    assert "prior" not in without_prior


def test_prior_draws_sit_near_the_suggestion_and_incumbent_draws_near_the_best_trial():
    sampler = PriorBandSampler(PRIOR, seed=1, uniform=0.0, beta=1e-9)  # prior first, then incumbent only
    study, sources = _run(sampler, 40, enqueue={"initial_lr": 1e-4, "schedule": "linear", "warmup_fraction": 0.0},
                          values=lambda p: 0.9 if p.initial_lr == pytest.approx(1e-4) else 0.5)
    # Trial 0 is the enqueued incumbent (1e-4, linear, best value); the rest are its neighbours.
    assert set(sources[1:]) == {"incumbent"}
    lrs = [math.log10(t.params["initial_lr"]) for t in study.trials[1:]]
    assert all(abs(lr + 4) < 1.5 for lr in lrs)  # 6 sigma of a quarter decade
    assert [t.params["schedule"] for t in study.trials[1:]].count("linear") >= 0.6 * 39
    prior_only = PriorBandSampler(PRIOR, seed=2, uniform=0.0)
    study = optuna.create_study(sampler=prior_only)
    lrs = []
    for _ in range(40):  # nothing ever finishes: no incumbent, every trial from the prior
        lrs.append(math.log10(suggest_params(study.ask(), SPACE).initial_lr))
    assert abs(sum(lrs) / len(lrs) - math.log10(2e-3)) < 0.3 and all(abs(lr - math.log10(2e-3)) < 2.5 for lr in lrs)


def test_rungs_start_at_one_epoch():
    assert rungs(8) == [1, 3] and rungs(10) == [1, 3, 9] and rungs(1) == [] and rungs(5, eta=2) == [1, 2, 4]


def test_promotion_tolerates_binomial_noise_but_not_a_clear_loser():
    others = [0.87, 0.86, 0.86, 0.85, 0.84, 0.83]
    # Top third of 7 is the 2nd best: 0.86. 300 images: a difference has SE sqrt(2*.86*.14/300) = 0.028.
    assert promotable(0.84, others, 300)
    assert not promotable(0.84, others, None)  # the plain top-1/eta rule
    assert not promotable(0.80, others, 300)
    assert promotable(0.80, others, 30)  # 30 images say little: more slack
    assert promotable(0.10, others[:2], 300)  # fewer than eta others: too early to judge
    assert not promotable(math.nan, others, 300)
    losses = [0.30, 0.35, 0.5, 0.6, 0.7]  # with the new one, 6 trials: the best 2 continue
    assert promotable(0.33, losses, None, maximize=False)
    assert not promotable(0.40, losses, None, maximize=False)


def test_the_pruner_judges_only_at_rungs():
    study = optuna.create_study(direction="maximize", pruner=NoiseTolerantHalvingPruner(8, 300))
    for v in (0.85, 0.86, 0.84, 0.87):
        t = study.ask()
        t.report(v, 1)
        t.report(v, 2)
        study.tell(t, v)
    bad = study.ask()
    bad.report(0.5, 1)
    assert bad.should_prune()
    late = study.ask()
    late.report(0.86, 1)
    assert not late.should_prune()
    late.report(0.1, 2)  # epoch 2 is no rung
    assert not late.should_prune()


def test_priorband_and_halving_run_a_study_to_its_exact_budget(tiny_config, tmp_path, monkeypatch):
    from sweep.study.budget import budget
    from sweep.study.setup import open_study
    from sweep.study.worker import run_worker

    monkeypatch.chdir(tmp_path)
    raw = tiny_config.to_dict()
    raw["study"].update(n_trials=6, sampler="priorband", pruner="halving")
    raw["train"]["epochs"] = 3
    raw["lr_finder"].update(num_steps=20)
    config = config_from_dict(raw)
    url = f"sqlite:///{tmp_path}/s.db"
    study = open_study(config, url)
    run_worker("tiny", url, config=config)
    assert budget(study).finished == 6 and len(study.get_trials()) == 6
    states = {t.state for t in study.get_trials()}
    assert states <= {TrialState.COMPLETE, TrialState.PRUNED} and TrialState.COMPLETE in states
    assert isinstance(study.pruner, optuna.pruners.BasePruner)
