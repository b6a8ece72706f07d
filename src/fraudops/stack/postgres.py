"""The project's own PostgreSQL cluster and its databases: one role per component, owning only its
database."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fraudops.config.settings import Settings
from fraudops.connections import ROLE_PASSWORDS, superuser_dsn


def service_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` system user."""
    return "postgres" if os.geteuid() == 0 else None


def _chown(path: Path, user: str | None) -> None:
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _make_reachable(path: Path, user: str | None) -> None:
    """The service user must be able to traverse every parent of its data folder (execute bit only)."""
    if not user:
        return
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


def initdb(bindir: Path, datadir: Path, run_dir: Path, superuser: str, password: str) -> bool:
    """Create the cluster once. Returns whether it was created now."""
    if (datadir / "PG_VERSION").exists():
        return False
    user = service_user()
    for folder in (datadir, run_dir):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        _chown(folder, user)
    _make_reachable(datadir, user)
    with tempfile.NamedTemporaryFile("w", dir=run_dir, delete=False) as pwfile:
        pwfile.write(password + "\n")
    try:
        _chown(Path(pwfile.name), user)
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                superuser,
                f"--pwfile={pwfile.name}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
        )
    finally:
        os.unlink(pwfile.name)
    return True


def init_databases(settings: Settings, secrets: Mapping[str, str]) -> list[str]:
    """Create (or update) each component's role and database; idempotent."""
    import psycopg2
    from psycopg2 import sql

    done = []
    conn = psycopg2.connect(superuser_dsn(settings, secrets))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for component, database in settings.postgres.databases.items():
                role = sql.Identifier(component)
                _upsert_login_role(cur, component, secrets[ROLE_PASSWORDS[component]])
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if not cur.fetchone():
                    cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), role))
                # nobody else may even connect: least privilege between components
                cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
                done.append(database)
    finally:
        conn.close()
    init_console_role(settings, secrets)
    init_scorer_role(settings, secrets)
    init_monitor_role(settings, secrets)
    return done


def _upsert_login_role(cur: Any, role: str, password: str) -> None:
    """Create the login ``role`` or set its password (no superuser, no CREATEDB, no CREATEROLE)."""
    from psycopg2 import sql

    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    cur.execute(
        sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)
        )
    )


def _login_role(
    settings: Settings, secrets: Mapping[str, str], role: str, password: str, *grants: Any
) -> None:
    """Create or update the login ``role`` (no superuser, no CREATEDB, no CREATEROLE) with ``password``,
    then run ``grants`` (psycopg2 ``sql`` statements) as the superuser. Idempotent."""
    import psycopg2

    conn = psycopg2.connect(superuser_dsn(settings, secrets))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            _upsert_login_role(cur, role, password)
            for grant in grants:
                cur.execute(grant)
    finally:
        conn.close()


def _grant_on_fraud_tables(settings: Settings, secrets: Mapping[str, str], grants: list[str]) -> None:
    """Run ``grants`` as the owner of the fraud tables (the ``fraud`` role), which creates them first."""
    from fraudops import fraud_db
    from fraudops.connections import component_url

    owner_dsn = component_url(settings, secrets, "fraud", driver="postgresql")
    fraud_db.create_tables(owner_dsn)
    with fraud_db.connect(owner_dsn) as owner, owner.cursor() as cur:
        for grant in grants:
            cur.execute(grant)
        owner.commit()


def _quoted(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def init_monitor_role(settings: Settings, secrets: Mapping[str, str]) -> None:
    """The metrics exporter's login role (``postgres.monitor_role``): a member of Postgres's built-in
    ``pg_monitor`` (statistics views and functions), with no grant on any database of ours. Idempotent."""
    from psycopg2 import sql

    from fraudops.connections import MONITOR_DB_PASSWORD

    role = settings.postgres.monitor_role
    grant = sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(role))
    _login_role(settings, secrets, role, secrets[MONITOR_DB_PASSWORD], grant)


def console_grants(role: str) -> list[str]:
    """What the console's role may do in the ``fraud`` database: read the tables it shows, write analyst
    labels, set an alert's status. Nothing else (no transactions_raw, no DDL, no DELETE)."""
    from fraudops.console.queries import READ_TABLES

    quoted = _quoted(role)
    return [
        *(f"GRANT SELECT ON {table} TO {quoted}" for table in READ_TABLES),
        f"GRANT INSERT, UPDATE ON fraud_labels TO {quoted}",
        f"GRANT UPDATE (status) ON fraud_alerts TO {quoted}",
    ]


def init_console_role(settings: Settings, secrets: Mapping[str, str]) -> None:
    """The console's login role (``console.db_role``) with :func:`console_grants` on the fraud tables; the
    tables are created first by their owner, the ``fraud`` role. Idempotent."""
    from psycopg2 import sql

    from fraudops.connections import CONSOLE_DB_PASSWORD

    role = settings.console.db_role
    database = settings.postgres.databases["fraud"]
    connect = sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(database), sql.Identifier(role)
    )
    _login_role(settings, secrets, role, secrets[CONSOLE_DB_PASSWORD], connect)
    _grant_on_fraud_tables(settings, secrets, console_grants(role))


# what the streaming scorer reads (history for its windows, the labels of its terminal risk) and appends
SCORER_READS = ("fraud_labels",)
SCORER_APPENDS = ("transactions_raw", "transactions_with_score", "fraud_alerts")


def scorer_grants(role: str) -> list[str]:
    """What the scorer's role may do in the ``fraud`` database: read history and labels, append scored
    transactions and alerts, record its micro-batches. No DDL, no DELETE, no TRUNCATE, no other table."""
    quoted = _quoted(role)
    return [
        *(f"GRANT SELECT ON {table} TO {quoted}" for table in SCORER_READS),
        *(f"GRANT SELECT, INSERT ON {table} TO {quoted}" for table in SCORER_APPENDS),
        f"GRANT USAGE ON SEQUENCE fraud_alerts_alert_id_seq TO {quoted}",
        # its one upsert: a replayed micro-batch counts an attempt
        f"GRANT SELECT, INSERT, UPDATE ON scorer_batches TO {quoted}",
    ]


def init_scorer_role(settings: Settings, secrets: Mapping[str, str]) -> None:
    """The streaming scorer's login role (``postgres.scorer_role``) with :func:`scorer_grants`; TEMPORARY
    for the staging table its micro-batch copies into. Idempotent."""
    from psycopg2 import sql

    from fraudops.connections import SCORER_DB_PASSWORD

    role = settings.postgres.scorer_role
    database = sql.Identifier(settings.postgres.databases["fraud"])
    connect = sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(database, sql.Identifier(role))
    _login_role(settings, secrets, role, secrets[SCORER_DB_PASSWORD], connect)
    _grant_on_fraud_tables(settings, secrets, scorer_grants(role))
