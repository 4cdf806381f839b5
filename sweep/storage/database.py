"""Where studies live: storage URLs, SQLite set-up for many writers, opening studies.

No Keras here, so ``sweep status`` and ``sweep report`` start fast. Every storage is a
plain Optuna ``RDBStorage``: Optuna's CLI and optuna-dashboard read it as-is.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from sweep.config import validate_study_name
from sweep.errors import ConfigError, StudyError
from sweep.storage.urls import mask_secrets, mask_url

__all__ = ["check_study_database", "default_storage_url", "load_study", "make_storage", "mask_secrets", "mask_url",
           "resolve_storage_url", "sqlite_path", "study_names"]

log = logging.getLogger(__name__)

STUDIES_DIR = Path("studies")


def checkpoints_dir(study_name: str) -> Path:
    """The folder of a study's per-trial epoch checkpoints (``studies/NAME/``)."""
    return STUDIES_DIR / study_name


SQLITE_BUSY_TIMEOUT_S = 60
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 30
# A database server that does not answer must fail in seconds, not after TCP's minutes.
SERVER_CONNECT_TIMEOUT_S = 10
# pg_advisory_lock key serializing Optuna's table set-up in one database ("sweep").
_SCHEMA_LOCK_KEY = 0x7377656570


def default_storage_url(name: str) -> str:
    return f"sqlite:///{STUDIES_DIR / f'{name}.db'}"


def resolve_storage_url(name: str, url: str | None = None) -> str:
    """The URL given, or the default ``sqlite:///studies/<name>.db``.

    The name is checked either way: it also names ``studies/<name>/`` (checkpoints) and
    ``results/<name>/``, so ``../x`` must never get further than here.
    """
    try:
        validate_study_name(name)
    except ValueError as exc:
        raise ConfigError(f"{exc}; expected a study name such as fmnist-schedules") from None
    return url or default_storage_url(name)


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other databases and in-memory)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StudyError(f"storage {mask_url(url)!r}: not a database URL; expected e.g. "
                         "sqlite:///studies/NAME.db or postgresql+psycopg://user@host/db") from None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def storage_key(url: str) -> str:
    """A name for the database behind ``url`` that checkpoints carry (so clean-up can tell a
    deleted study's files from another storage's): a SQLite file by absolute path, any other
    database by its URL without the password."""
    path = sqlite_path(url)
    if path is not None:
        return f"sqlite:///{path.expanduser().resolve()}"
    parsed = make_url(url)
    return f"{parsed.drivername}://{parsed.username or ''}@{parsed.host or ''}:{parsed.port or ''}/{parsed.database or ''}"


def make_storage(url: str, *, create: bool, heartbeat: bool = False, **callbacks: Any) -> optuna.storages.RDBStorage:
    """An ``RDBStorage`` for ``url``.

    ``create=False`` refuses to create a missing SQLite file (an unknown study must
    not leave an empty database behind) or to add Optuna's tables to a file that lacks
    them; in-memory SQLite is refused (no other process could see it). SQLite gets
    WAL, so readers never block the writer, and a long busy timeout, so several worker
    processes can write.
    ``heartbeat`` turns on Optuna's heartbeat: workers record it while they train, and
    ``sweep.study.recovery`` takes over trials whose heartbeat is older than the grace
    period (``callbacks``, e.g. ``heartbeat_stale_trial_callback``, go to Optuna's storage
    for its own ``fail_stale_trials``, which sweep does not call).

    A database server (PostgreSQL, MySQL) is how workers on several machines share a
    study. There ``create=False`` refuses a database without Optuna's tables instead of
    creating them, a server that does not answer fails within ``SERVER_CONNECT_TIMEOUT_S``
    and pooled connections are checked before use (long trials outlive idle connections).
    Processes creating Optuna's tables in a new database, SQLite or server, take turns.
    Error messages never contain the password.
    """
    path = sqlite_path(url)  # also validates the URL
    parsed = make_url(url)
    server = parsed.get_backend_name() != "sqlite"
    engine_kwargs: dict[str, Any] = _server_engine_kwargs(parsed) if server else {}
    if path is None and not server:
        # Each connection to an in-memory database gets its own, empty one: the workers
        # and every later command would find no study (a KeyError deep in Optuna).
        raise StudyError(f"storage {mask_url(url)!r}: an in-memory SQLite database cannot be shared by workers or "
                         "resumed; give a file, e.g. sqlite:///studies/NAME.db")
    if path is not None:
        if not path.exists():
            if not create:
                raise StudyError(f"no study database at {path}; run 'sweep run CONFIG' first or pass --storage")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StudyError(f"cannot create {path.parent}: {exc.strerror}") from None
        elif not create:
            check_study_database(path)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    heartbeat_kwargs: dict[str, Any] = {}
    if heartbeat:
        heartbeat_kwargs = {"heartbeat_interval": HEARTBEAT_INTERVAL_S, "grace_period": GRACE_PERIOD_S, **callbacks}
    # Optuna fills "{...}" templates in the URL with str.format: escape braces in passwords.
    template = url.replace("{", "{{").replace("}", "}}")
    try:
        if server:
            guard = _server_setup(url, engine_kwargs, create)
        else:
            guard = _sqlite_setup_lock(path) if path is not None else nullcontext()
        with guard:
            if path is not None:
                _enable_wal(path)  # under the lock: switching to WAL needs the file to itself
            storage = optuna.storages.RDBStorage(template, engine_kwargs=engine_kwargs, **heartbeat_kwargs)
    except StudyError:
        raise
    except ImportError as exc:  # SQLAlchemy imports the driver when it makes the engine
        raise StudyError(f"storage {mask_url(url)}: its database driver is not installed ({exc}); "
                         "for PostgreSQL: pip install 'sweep[postgresql]' and use postgresql+psycopg://") from None
    except Exception as exc:  # noqa: BLE001 - driver errors vary by database; all mean "unusable"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StudyError(f"storage {mask_url(url)}: cannot be opened ({mask_secrets(reason, url)[:200]})") from None
    if path is not None:
        _serialize_sqlite_transactions(storage.engine)
    return storage


def _serialize_sqlite_transactions(engine: Any) -> None:
    """Make every SQLite transaction take the write lock when it begins (BEGIN IMMEDIATE).

    Python's sqlite3 driver opens a transaction only at the first write, so Optuna's
    "read the WAITING trial, then mark it RUNNING" runs its read outside any lock: two
    workers both read WAITING and both take the same enqueued trial (measured: 4
    processes popping 200 enqueued trials took several twice and crashed on
    UpdateFinishedTrialError). With BEGIN IMMEDIATE the read and the write are one
    serialized transaction, which is what Optuna's SELECT ... FOR UPDATE gives on
    PostgreSQL. The cost is that transactions of writers queue (busy timeout 60 s).
    This is SQLAlchemy's documented recipe for pysqlite transactions.
    """

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made before the listeners existed must not be reused


def _server_engine_kwargs(url: URL) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    # libpq's connect_timeout (psycopg, psycopg2); a value in the URL's query wins.
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("psycopg", "psycopg2") \
            and "connect_timeout" not in url.query:
        kwargs["connect_args"] = {"connect_timeout": SERVER_CONNECT_TIMEOUT_S}
    return kwargs


@contextmanager
def _server_setup(url: str, engine_kwargs: dict[str, Any], create: bool) -> Iterator[None]:
    """Guard Optuna's opening of a server database, on a connection of our own.

    ``create=False``: refuse a database without Optuna's tables (nothing is created).
    ``create=True`` on PostgreSQL: hold an advisory lock while Optuna creates its tables,
    because workers starting together on a new database otherwise race in CREATE TABLE
    (measured: 6 of 20 processes failed with UniqueViolation on pg_type).
    """
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        with engine.connect() as connection:
            if not create and not sqlalchemy.inspect(connection).has_table("studies"):
                raise StudyError(f"no Optuna studies in {mask_url(url)}; run 'sweep run CONFIG --storage URL' first")
            lock = create and engine.dialect.name == "postgresql"
            if lock:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                if lock:
                    connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


@contextmanager
def _sqlite_setup_lock(path: Path) -> Iterator[None]:
    """Serialize Optuna's table set-up in a SQLite file between the processes that open it.

    Processes opening a new file together otherwise race in CREATE TABLE ("table studies
    already exists"; measured: 3 of 4 processes failed), also when one of them only
    reads (Optuna creates missing tables on every open). The lock is an flock on the
    file's folder: no lock file left behind, and independent of SQLite's own POSIX locks
    on the database file (closing a descriptor of that file would drop those).
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; concurrent first opens stay unguarded there
        yield
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_study_database(path: Path) -> None:
    """Raise StudyError unless the SQLite file ``path`` holds Optuna's tables; only reads it.

    Optuna creates its tables in any database it opens, and WAL changes the file's
    header: without this, ``sweep status`` would rewrite a stray ``studies/x.db`` (or
    an empty file) and ``--storage sqlite:///their.db`` someone else's database.
    """
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                     timeout=SQLITE_BUSY_TIMEOUT_S)) as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StudyError(f"{path}: not a usable SQLite database ({exc}){_sqlite_hint(path)}") from None
    if found is None:
        raise StudyError(f"{path}: holds no Optuna studies (a database sweep did not make); left unchanged")


def _sqlite_hint(path: Path) -> str:
    # SQLite says "unable to open database file" or "disk I/O error" for both causes.
    folder = path.parent
    if not os.access(folder, os.W_OK):
        return f"; its folder {folder} is read-only, and SQLite writes {path.name}-wal and -shm beside it"
    try:
        if shutil.disk_usage(folder).free < 1 << 20:
            return f"; the disk holding {folder} is full"
    except OSError:
        pass
    return ""


def _enable_wal(path: Path) -> None:
    # WAL is a property of the database file: set once, every later connection uses it.
    # Reading the mode takes no lock; switching it does (and fails at once, busy timeout
    # or not, while another process reads), so switch only when needed.
    try:
        with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)) as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        raise StudyError(f"{path}: not a usable SQLite database ({exc}){_sqlite_hint(path)}") from None


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(s.study_name for s in storage.get_all_studies())


def load_study(name: str, url: str | None = None, **storage_kwargs: Any) -> optuna.Study:
    """Open an existing study, or raise StudyError naming the studies that do exist."""
    url = resolve_storage_url(name, url)
    storage = make_storage(url, create=False, **storage_kwargs)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = ", ".join(study_names(storage)) or "none"
        raise StudyError(f"no study named {name!r} in {mask_url(url)} (studies there: {known})") from None
