"""Storage behaviour, one test class run against every storage a sweep supports.

Like Optuna's StorageTestCase: the same assertions hold for a SQLite file and a real
PostgreSQL server (tests/postgres.py: a fresh database per test; CI starts the server).
Then the URL helpers: masking, error messages that never leak a password, timeouts.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from urllib.parse import quote

import optuna
import pytest
import sqlalchemy
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from sweep.storage import database as storage_module
from sweep.errors import StudyError
from sweep.storage.database import load_study, make_storage, mask_secrets, mask_url, study_names
from tests.conftest import ROOT

optuna.logging.set_verbosity(optuna.logging.WARNING)

PASSWORD = "s3cr:t/p@ss{w}"  # URL-special characters, braces for Optuna's URL template
ENCODED = quote(PASSWORD, safe="")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    return request.getfixturevalue("postgres_url")


def _password(url: str) -> str | None:
    return sqlalchemy.engine.make_url(url).password


def _assert_no_password(text: str, url: str) -> None:
    password = _password(url)
    if password:
        assert password not in text and quote(password, safe="") not in text, text


def _has_optuna_tables(url: str) -> bool:
    if url.startswith("sqlite:///"):
        path = sqlalchemy.engine.make_url(url).database
        if not __import__("os").path.exists(path):
            return False
    engine = sqlalchemy.create_engine(url)
    try:
        return sqlalchemy.inspect(engine).has_table("studies")
    finally:
        engine.dispose()


class TestStorage:
    def test_created_study_loads_with_its_trials_and_attrs(self, url):
        study = optuna.create_study(study_name="alpha", storage=make_storage(url, create=True), direction="maximize")
        study.set_user_attr("sweep:n_trials", 3)
        study.add_trial(optuna.trial.create_trial(params={"x": 0.25}, distributions={"x": FloatDistribution(0, 1)}, value=0.5))

        loaded = load_study("alpha", url)

        assert loaded.direction == optuna.study.StudyDirection.MAXIMIZE
        assert loaded.user_attrs == {"sweep:n_trials": 3}
        assert [(t.number, t.params, t.value) for t in loaded.trials] == [(0, {"x": 0.25}, 0.5)]
        assert study_names(make_storage(url, create=False)) == ["alpha"]

    def test_unknown_study_names_the_known_ones(self, url):
        storage = make_storage(url, create=True)
        for name in ("beta", "alpha"):
            optuna.create_study(study_name=name, storage=storage)

        with pytest.raises(StudyError) as excinfo:
            load_study("gamma", url)

        message = str(excinfo.value)
        assert "'gamma'" in message and "(studies there: alpha, beta)" in message
        assert mask_url(url) in message
        _assert_no_password(message, url)

    def test_opening_an_empty_storage_to_read_creates_nothing(self, url):
        with pytest.raises(StudyError, match=r"^no (study database|Optuna studies)"):
            load_study("alpha", url)
        assert not _has_optuna_tables(url)

    @pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
    @pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
    def test_heartbeat_fails_a_silent_trial_and_retries_its_params(self, url, monkeypatch):
        monkeypatch.setattr(storage_module, "HEARTBEAT_INTERVAL_S", 1)
        monkeypatch.setattr(storage_module, "GRACE_PERIOD_S", 1)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1, inherit_intermediate_values=True)
        storage = make_storage(url, create=True, heartbeat=True, heartbeat_stale_trial_callback=retry)
        study = optuna.create_study(study_name="hb", storage=storage)
        trial = study.ask({"x": FloatDistribution(0, 1)})
        trial.report(0.75, step=0)
        storage.record_heartbeat(trial._trial_id)  # then the worker "dies": no more beats

        time.sleep(2.2)  # past the grace period, measured on the database's clock
        optuna.storages.fail_stale_trials(study)

        dead, retried = study.get_trials(deepcopy=False)
        assert (dead.state, retried.state) == (TrialState.FAIL, TrialState.WAITING)
        assert retried.system_attrs["failed_trial"] == dead.number
        assert retried.params == dead.params
        assert retried.intermediate_values == {0: 0.75}

    @pytest.mark.slow
    def test_concurrent_workers_lose_and_duplicate_no_trial(self, url):
        # 4 processes open the (not yet existing) storage at the same instant, create or
        # load the study, each enqueue 2 trials and run 6; every enqueued trial must run
        # exactly once and the trial numbers must be 0..23 without gaps.
        workers, per_worker, enqueued = 4, 6, 2
        start = time.time() + 4.0  # after every process has imported optuna
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, url, str(start), str(w), str(enqueued), str(per_worker)],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for w in range(workers)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * workers, "\n".join(errors)

        trials = load_study("race", url).get_trials(deepcopy=False)
        assert sorted(t.number for t in trials) == list(range(workers * per_worker))
        assert {t.state for t in trials} == {TrialState.COMPLETE}
        assert len({t._trial_id for t in trials}) == len(trials)
        xs = Counter(t.params["x"] for t in trials)
        assert all(xs[1000 + 10 * w + j] == 1 for w in range(workers) for j in range(enqueued))
        assert sorted(Counter(t.user_attrs["worker"] for t in trials).values()) == [per_worker] * workers


_WORKER = textwrap.dedent(
    """
    import os, sys, time
    import optuna
    from sweep.storage.database import make_storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, start, worker, enqueued, n_trials = sys.argv[1], float(sys.argv[2]), *map(int, sys.argv[3:])
    time.sleep(max(0.0, start - time.time()))
    study = optuna.create_study(study_name="race", storage=make_storage(url, create=True), load_if_exists=True)
    for j in range(enqueued):
        study.enqueue_trial({"x": 1000.0 + 10 * worker + j})

    def objective(trial):
        trial.set_user_attr("worker", os.getpid())
        time.sleep(0.01)
        return trial.suggest_float("x", 0.0, 2000.0)

    study.optimize(objective, n_trials=n_trials)
    """
)


# --- URLs: masking and messages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://sweep:hunter2@db.example:5432/sweeps", "postgresql+psycopg://sweep:***@db.example:5432/sweeps"),
        (f"postgresql+psycopg://sweep:{ENCODED}@db/s", "postgresql+psycopg://sweep:***@db/s"),
        ("postgresql://u:p@ss@db/s", "postgresql://u:***@db/s"),  # unencoded "@": all of it is masked
        ("postgresql://u:pa:ss/w@db:5/s", "postgresql://u:***@db:5/s"),
        ("mysql+pymysql://u:sec#ret@h/d", "mysql+pymysql://u:***@h/d"),
        ("postgresql://:only-password@h/d", "postgresql://:***@h/d"),
        ("postgresql://u@h/d?password=hunter2&sslmode=require", "postgresql://u@h/d?password=***&sslmode=require"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("sqlite:///studies/fmnist.db", "sqlite:///studies/fmnist.db"),
        ("sqlite://", "sqlite://"),
        ("postgresql://u:hunter2@h:notaport/d", "postgresql://u:***@h:notaport/d"),  # SQLAlchemy cannot parse it
        ("u:hunter2@h", "u:***@h"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked
    assert "hunter2" not in mask_url(url)


def test_mask_secrets_removes_the_url_and_every_form_of_the_password():
    url = f"postgresql+psycopg://sweep:{ENCODED}@db/s"
    text = f"cannot connect to {url}: password {PASSWORD!r} ({ENCODED}) rejected"
    assert mask_secrets(text, url) == "cannot connect to postgresql+psycopg://sweep:***@db/s: password '***' (***) rejected"


def test_a_driver_message_quoting_the_password_is_scrubbed(monkeypatch):
    url = f"postgresql+psycopg://sweep:{ENCODED}@127.0.0.1:1/s"

    def leaky_storage(*_args, **_kwargs):
        raise sqlalchemy.exc.OperationalError("connect", {}, Exception(f"bad login {url} with password={PASSWORD}"))

    monkeypatch.setattr(storage_module, "_server_setup", lambda *a: __import__("contextlib").nullcontext())
    monkeypatch.setattr(optuna.storages, "RDBStorage", leaky_storage)
    with pytest.raises(StudyError, match=r"cannot be opened \(.*bad login") as excinfo:
        make_storage(url, create=True)
    _assert_no_password(str(excinfo.value), url)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("create", [True, False])
def test_unreachable_server_is_a_study_error_without_the_password(create):
    url = f"postgresql+psycopg://sweep:{ENCODED}@127.0.0.1:{_free_port()}/sweeps"
    began = time.monotonic()
    with pytest.raises(StudyError) as excinfo:
        make_storage(url, create=create)
    message = str(excinfo.value)
    assert message.startswith("storage postgresql+psycopg://sweep:***@127.0.0.1:") and "Connection refused" in message
    _assert_no_password(message, url)
    assert time.monotonic() - began < 5


def test_a_server_that_never_answers_times_out(monkeypatch):
    # Accepts the TCP connection (the kernel does, via the backlog) and then says nothing:
    # what a firewalled or hung server looks like. libpq's minimum timeout is 2 s.
    monkeypatch.setattr(storage_module, "SERVER_CONNECT_TIMEOUT_S", 2)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql+psycopg://sweep:{ENCODED}@127.0.0.1:{silent.getsockname()[1]}/sweeps"
        began = time.monotonic()
        with pytest.raises(StudyError, match="cannot be opened") as excinfo:
            make_storage(url, create=True)
        assert time.monotonic() - began < 10
    _assert_no_password(str(excinfo.value), url)


def test_wrong_password_on_a_real_server_is_reported_without_it(postgres_url):
    url = sqlalchemy.engine.make_url(postgres_url).set(password="not-the-" + PASSWORD).render_as_string(hide_password=False)
    with pytest.raises(StudyError, match="password authentication failed") as excinfo:
        make_storage(url, create=True)
    _assert_no_password(str(excinfo.value), url)
