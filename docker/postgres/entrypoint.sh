#!/bin/sh
# Entrypoint of the PostgreSQL image, with the interface of the official postgres image that compose uses:
# POSTGRES_USER and POSTGRES_PASSWORD (the superuser), POSTGRES_DB, PGDATA, and /docker-entrypoint-initdb.d
# (*.sql and *.sh, run once, on the first start). Network clients log in with scram-sha-256.
set -eu

if [ "${1:-}" = "postgres" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required (env/postgres.env: run \`make secrets\`)}"
    user="${POSTGRES_USER:-postgres}"
    pwfile="$(mktemp)"
    # the password reaches initdb through a file, never its command line
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"

    # init scripts against a server that listens on its socket only
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    db="${POSTGRES_DB:-$user}"
    if [ "$db" != "postgres" ]; then
        psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sql) psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -f "$script" ;;
            *.sh) . "$script" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres-entrypoint: initialised $PGDATA"
fi

exec "$@"
