"""Passwords in storage URLs never reach output, logs (``-v``), the study or any file written."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import optuna
import pytest
import sqlalchemy

SECRET = "pa55-Secret"
DEAD = "127.0.0.1:1"  # nothing listens on port 1: every command fails to connect

# Every way a password can ride in a URL: user part, percent-encoded, unencoded "@" and
# ":" (SQLAlchemy splits at the first "@"), and libpq's password query parameter.
DEAD_URLS = [
    f"postgresql+psycopg://me:{SECRET}@{DEAD}/db",
    f"postgresql+psycopg://me:{quote(SECRET + '@:/', safe='')}@{DEAD}/db",
    f"postgresql+psycopg://me:{SECRET}@x:y@{DEAD}/db",
    f"postgresql+psycopg://me@{DEAD}/db?password={SECRET}",
    f"postgresql+psycopg://me:{SECRET}@{DEAD}/db?connect_timeout=1",
]


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret)}


def _assert_nowhere(cli, secret: str, *texts: str) -> None:
    for form in _forms(secret):
        assert not any(form in text for text in texts), f"{form!r} in the output"
        assert not any(form.encode() in p.read_bytes() for p in cli.root.rglob("*") if p.is_file()), \
            f"{form!r} written to a file"


@pytest.mark.parametrize("url", DEAD_URLS, ids=["plain", "encoded", "unencoded-at", "query", "timeout"])
@pytest.mark.parametrize("argv", [
    ["-v", "status", "--storage", "{url}"],
    ["-v", "status", "tiny", "--storage", "{url}"],
    ["-v", "run", "tiny.yaml", "--storage", "{url}"],
    ["-v", "run", "tiny.yaml", "--set", "study.storage={url}"],
    ["-v", "resume", "tiny", "--storage", "{url}"],
    ["-v", "report", "tiny", "--storage", "{url}"],
    ["-v", "evaluate", "tiny", "--storage", "{url}"],
    ["-v", "compare", "{url}#a", "b"],
], ids=lambda argv: "-".join(a for a in argv[1:3] if "{" not in a))
def test_passwords_never_reach_the_output(cli, url, argv):
    argv = [a.replace("{url}", url) for a in argv]
    code, out, err = cli(*argv)
    assert code == 2 and "Traceback" not in err, err
    _assert_nowhere(cli, SECRET, out, err)


@pytest.mark.slow
def test_a_real_server_study_never_shows_its_password(cli, postgres_url):
    """A whole study on PostgreSQL (CI's password has ":", "@" and "/"), every command with
    debug logging; then the study's own attributes, and a wrong password."""
    password = sqlalchemy.engine.make_url(postgres_url).password
    assert password, "the test server's URL must carry a password"
    url = postgres_url
    outputs = []
    for argv in (["run", "tiny.yaml", "--storage", url], ["status", "--storage", url],
                 ["status", "tiny", "--storage", url], ["report", "tiny", "--storage", url],
                 ["resume", "tiny", "--storage", url, "--n-trials", "3", "--no-report"],
                 ["compare", f"{url}#tiny", f"{url}#tiny", "--out", "results/both"]):
        code, out, err = cli("-v", *argv)
        outputs += [out, err]
        assert "Traceback" not in err, err[-3000:]
        assert code == 0, (argv, err[-2000:])
    assert (cli.root / "results" / "tiny" / "index.html").is_file() and (cli.root / "results" / "both").is_dir()
    study = optuna.load_study(study_name="tiny", storage=url)
    stored = json.dumps([study.user_attrs, [(t.user_attrs, t.system_attrs) for t in study.trials]], default=str)
    wrong = sqlalchemy.engine.make_url(url).set(password="wrong-" + SECRET).render_as_string(hide_password=False)
    code, out, err = cli("-v", "status", "--storage", wrong)
    assert code == 2 and "Traceback" not in err
    _assert_nowhere(cli, password, stored, *outputs)
    _assert_nowhere(cli, "wrong-" + SECRET, out, err)
