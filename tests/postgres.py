"""A fresh PostgreSQL database per test, on the server named by SWEEP_TEST_POSTGRES_URL.

CI starts a real server with ``.ci/postgres.sh`` and exports the variable; locally,
``export SWEEP_TEST_POSTGRES_URL="$(bash .ci/postgres.sh)"`` does the same. The URL's
role needs CREATEDB: each test gets its own empty database, dropped afterwards (with
FORCE, so connections left by killed worker processes do not keep it alive).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "SWEEP_TEST_POSTGRES_URL"


def server_url() -> str | None:
    return os.environ.get(ENV) or None


def _libpq_uri(url: str, database: str | None = None) -> str:
    # psycopg takes a libpq URI: the SQLAlchemy URL without "+driver", password kept.
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _admin(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(_libpq_uri(url), autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement)


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """Create an empty database next to ``url``'s, yield its SQLAlchemy URL, drop it."""
    from sqlalchemy.engine import make_url

    name = f"sweep_test_{uuid.uuid4().hex[:12]}"
    _admin(url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
