#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the test suite and print its URL.
#
#   export SWEEP_TEST_POSTGRES_URL="$(bash .ci/postgres.sh)"
#
# Idempotent and quiet: installs Debian's `postgresql` only when no server binaries are
# present, reuses a server this script started earlier, and prints nothing but the URL
# (the server log is $SWEEP_PG_DATA/server.log). As root, the server runs as the
# `postgres` user, because PostgreSQL refuses to run as root.
#
# The role has a password with URL-special characters, so the suite exercises both
# percent-encoding and password masking against a real server. It may create
# databases: the tests' `postgres_url` fixture gives each test a fresh one.
set -euo pipefail

PORT="${SWEEP_PG_PORT:-55432}"
DATA="${SWEEP_PG_DATA:-/tmp/sweep-ci-pg}"
ROLE=sweep
DATABASE=sweep
PASSWORD='ci:p@ss/w0rd'
PASSWORD_IN_URL='ci%3Ap%40ss%2Fw0rd'  # the same, percent-encoded for the URL

die() { echo "postgres.sh: $*" >&2; exit 1; }

server_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN="$(server_bin)"
if [[ -z "$BIN" || ! -x "$BIN/pg_ctl" ]]; then
    [[ $EUID -eq 0 ]] || die "no PostgreSQL server found; install Debian's 'postgresql' package (needs root)"
    export DEBIAN_FRONTEND=noninteractive
    # The package's own cluster (port 5432) is not needed: ours lives in $DATA.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/sweep-ci.conf
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql; } >/tmp/sweep-ci-apt.log 2>&1 \
        || { cat /tmp/sweep-ci-apt.log >&2; die "apt-get install postgresql failed"; }
    BIN="$(server_bin)"
    [[ -n "$BIN" && -x "$BIN/pg_ctl" ]] || die "installing 'postgresql' gave no server binaries"
fi

# Run server-side commands as `postgres` when we are root, as ourselves otherwise.
if [[ $EUID -eq 0 ]]; then
    id -u postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    as_server() { (cd / && runuser -u postgres -- "$@"); }
else
    as_server() { "$@"; }
fi
psql_admin() { as_server "$BIN/psql" -h "$DATA" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

version="$("$BIN/postgres" --version | awk '{print $3}' | cut -d. -f1)"
if [[ -f "$DATA/PG_VERSION" && "$(cat "$DATA/PG_VERSION")" != "$version" ]]; then
    as_server "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$DATA"
fi
if [[ ! -f "$DATA/PG_VERSION" ]]; then
    rm -rf "$DATA"
    mkdir -p "$DATA"
    if [[ $EUID -eq 0 ]]; then chown postgres: "$DATA"; fi
    chmod 700 "$DATA"
    # Trust on the unix socket (inside $DATA, so only its owner reaches it); passwords over TCP.
    as_server "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >"$DATA.initdb.log" 2>&1 \
        || die "initdb failed; see $DATA.initdb.log"
    # A test server: durability is worth nothing here, speed is.
    cat >>"$DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
fi

if ! as_server "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_server "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null \
        || die "the server did not start; see $DATA/server.log"
fi

psql_admin >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $DATABASE OWNER $ROLE'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DATABASE') \gexec
SQL

echo "postgresql+psycopg://$ROLE:$PASSWORD_IN_URL@127.0.0.1:$PORT/$DATABASE"
