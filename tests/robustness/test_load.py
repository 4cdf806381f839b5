"""Divergence and load: a huge LR never crashes a run; 500 trials across 2 processes on
one SQLite file, none lost or duplicated."""

import multiprocessing
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from sweep import attrs

TRIALS_PER_PROCESS = 250
ENQUEUED = 100


@pytest.mark.parametrize("schedules, n, report", [("[constant]", 3, False),
                                                   ("[constant, exponential, step, cosine, linear]", 5, True)],
                         ids=["constant", "every-schedule"])
def test_a_huge_learning_rate_never_crashes_a_run(cli, schedules, n, report):
    """Exit 0, and every trial pruned as diverged, with warmup and decay too; a report of them."""
    code, out, err = cli("run", "tiny.yaml", "--set", "search.initial_lr.low=50", "--set", "search.initial_lr.high=1000",
                         "--set", f"search.schedules={schedules}", "--set", "study.seed=1",
                         "--set", "study.sampler=random", "--n-trials", str(n), *([] if report else ["--no-report"]))
    assert code == 0, err[-2000:]
    assert "Traceback" not in err
    study = optuna.load_study(study_name="tiny", storage="sqlite:///studies/tiny.db")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED] * n
    assert all(t.user_attrs[attrs.PRUNE_REASON] == "diverged" for t in trials)
    assert (cli.root / "results" / "tiny" / "index.html").is_file() == report


def _trivial_worker(url: str, worker: int) -> None:
    from sweep.storage.database import make_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="load", storage=make_storage(url, create=False),
                              sampler=optuna.samplers.RandomSampler(seed=worker))
    for _ in range(TRIALS_PER_PROCESS):
        trial = study.ask()
        x = trial.suggest_float("x", 0, 1)
        trial.set_user_attr("worker", worker)
        trial.report(x, 1)
        study.tell(trial, x)


@pytest.mark.slow
def test_500_trials_across_two_processes_on_sqlite(tmp_path):
    from sweep.storage.database import make_storage

    url = f"sqlite:///{tmp_path}/load.db"
    study = optuna.create_study(study_name="load", storage=make_storage(url, create=True))
    for i in range(ENQUEUED):
        study.enqueue_trial({"x": i / 1000})
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_trivial_worker, args=(url, w)) for w in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=300)
    assert [p.exitcode for p in workers] == [0, 0]
    trials = study.get_trials()
    assert len(trials) == 2 * TRIALS_PER_PROCESS
    assert all(t.state == TrialState.COMPLETE for t in trials), "none lost"
    assert Counter(t.user_attrs["worker"] for t in trials) == {0: TRIALS_PER_PROCESS, 1: TRIALS_PER_PROCESS}
    enqueued = Counter(t.params["x"] for t in trials if "fixed_params" in t.system_attrs)
    assert len(enqueued) == ENQUEUED and set(enqueued.values()) == {1}, "each enqueued trial taken exactly once"
    assert sorted(t.number for t in trials) == list(range(2 * TRIALS_PER_PROCESS)), "no duplicate numbers"
