"""The project's own PostgreSQL cluster and its databases: one role per component, owning only its
database."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
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
    init_fraud_roles(settings, secrets)
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


def _quoted(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


@dataclass(frozen=True)
class RoleGrants:
    """What a login role may do in the ``fraud`` database: its privileges on the database itself
    (TEMPORARY for the staging tables a COPY-and-upsert writes through) and ``(privileges, object)`` pairs
    on the tables and sequences, and Postgres's built-in roles it is a member of; anything not listed is
    refused."""

    database: str
    objects: tuple[tuple[str, str], ...]
    member_of: tuple[str, ...] = ()


@cache
def fraud_grants() -> dict[str, RoleGrants]:
    """Every login role of the fraud database beside its owner (keys of
    :data:`fraudops.connections.FRAUD_ROLES`) and its grants: the one definition. No role gets DDL (the
    init step, as the owner, creates every table), DELETE or TRUNCATE; UPDATE only where an idempotent
    write rewrites its own rows."""
    from fraudops.console.queries import READ_TABLES

    return {
        # the analyst console: reads the tables it shows, writes analyst labels, sets an alert's status
        "console": RoleGrants(
            "CONNECT",
            (
                *(("SELECT", table) for table in READ_TABLES),
                ("INSERT, UPDATE", "fraud_labels"),
                ("UPDATE (status)", "fraud_alerts"),
            ),
        ),
        # the streaming scorer: reads history and labels, appends scored transactions and alerts; UPDATE
        # only on its batch log, whose one upsert counts a replayed micro-batch's attempts
        "scorer": RoleGrants(
            "CONNECT, TEMPORARY",
            (
                ("SELECT", "fraud_labels"),
                ("SELECT, INSERT", "transactions_raw"),
                ("SELECT, INSERT", "transactions_with_score"),
                ("SELECT, INSERT", "fraud_alerts"),
                ("USAGE", "SEQUENCE fraud_alerts_alert_id_seq"),
                ("SELECT, INSERT, UPDATE", "scorer_batches"),
            ),
        ),
        # the retraining pipeline (its steps, the DAG, promote / rollback, the drift check): extract reads
        # transactions and the labels known at the cutoff; the audit log's upsert rewrites a retried task's
        # own rows (UPDATE); the drift check reads scored traffic and appends its report
        "pipeline": RoleGrants(
            "CONNECT",
            (
                ("SELECT", "transactions_raw"),
                ("SELECT", "fraud_labels"),
                ("SELECT, INSERT, UPDATE", "model_metadata"),
                ("USAGE", "SEQUENCE model_metadata_id_seq"),
                ("SELECT", "transactions_with_score"),
                ("INSERT", "drift_reports"),
            ),
        ),
        # the producer (the stream's label feed, the history loader): appends transactions and labels
        # through a staging table (TEMPORARY; its LIKE and the upsert's conflict key need SELECT) and
        # reads transactions_raw's newest simulated day to continue the world from there
        "producer": RoleGrants(
            "CONNECT, TEMPORARY",
            (
                ("SELECT, INSERT", "transactions_raw"),
                ("SELECT, INSERT", "fraud_labels"),
            ),
        ),
        # the metrics exporters: Postgres's statistics views and functions (pg_monitor, in the postgres
        # database); the platform exporter reads the latest drift report
        "monitor": RoleGrants("CONNECT", (("SELECT", "drift_reports"),), member_of=("pg_monitor",)),
    }


def role_grants(who: str, role: str) -> list[str]:
    """The GRANT statements of ``who``'s entry of :func:`fraud_grants`, given to ``role``."""
    quoted = _quoted(role)
    objects = fraud_grants()[who].objects
    return [f"GRANT {privileges} ON {target} TO {quoted}" for privileges, target in objects]


def console_grants(role: str) -> list[str]:
    return role_grants("console", role)


def scorer_grants(role: str) -> list[str]:
    return role_grants("scorer", role)


def init_fraud_roles(settings: Settings, secrets: Mapping[str, str]) -> list[str]:
    """Create (or update) every login role of :func:`fraud_grants` with its password and exactly its grants
    (what an older version granted is revoked in the same transaction), after the ``fraud`` role, the
    owner, created every table. Idempotent; returns the roles."""
    from psycopg2 import sql

    from fraudops import fraud_db
    from fraudops.connections import FRAUD_ROLES, component_url, fraud_role

    database = sql.Identifier(settings.postgres.databases["fraud"])
    owner_dsn = component_url(settings, secrets, "fraud", driver="postgresql")
    fraud_db.create_tables(owner_dsn)
    roles = {who: fraud_role(settings, who) for who in fraud_grants()}
    for who, role in roles.items():
        grants = fraud_grants()[who]
        on_database = sql.SQL("GRANT " + grants.database + " ON DATABASE {} TO {}").format(
            database, sql.Identifier(role)
        )
        members = [
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(m), sql.Identifier(role))
            for m in grants.member_of
        ]
        _login_role(settings, secrets, role, secrets[FRAUD_ROLES[who][1]], on_database, *members)
    with fraud_db.connect(owner_dsn) as owner, owner.cursor() as cur:
        for who, role in roles.items():
            for kind in ("TABLES", "SEQUENCES"):
                cur.execute(f"REVOKE ALL ON ALL {kind} IN SCHEMA public FROM {_quoted(role)}")
            for grant in role_grants(who, role):
                cur.execute(grant)
        owner.commit()
    return list(roles.values())
