"""Connection strings of every component, built in one place from the settings and the secrets: the
native stack, the compose init step, the pipeline, the scorer and the producer all log in through these."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import quote

from fraudops.config.settings import Settings

# component -> the secret holding its role's password
ROLE_PASSWORDS = {
    "airflow": "AIRFLOW_DB_PASSWORD",
    "mlflow": "MLFLOW_DB_PASSWORD",
    "fraud": "FRAUD_DB_PASSWORD",
}


def _postgres(settings: Settings) -> str:
    return f"{settings.host_of('postgres')}:{settings.stack.ports.postgres}"


def superuser_dsn(settings: Settings, secrets: Mapping[str, str], database: str = "postgres") -> str:
    """The cluster's superuser (what creates the roles and databases), as a libpq URL."""
    user = quote(secrets.get("POSTGRES_USER", settings.postgres.superuser), safe="")
    password = quote(secrets["POSTGRES_PASSWORD"], safe="")
    return f"postgresql://{user}:{password}@{_postgres(settings)}/{database}"


def redis_url(settings: Settings, secrets: Mapping[str, str], database: int = 0) -> str:
    """Redis (Airflow's Celery broker), with its password URL-quoted."""
    password = quote(secrets["REDIS_PASSWORD"], safe="")
    return f"redis://:{password}@{settings.host_of('redis')}:{settings.stack.ports.redis}/{database}"


def component_url(
    settings: Settings,
    secrets: Mapping[str, str],
    component: str,
    driver: str = "postgresql+psycopg2",
    password: bool = True,
) -> str:
    """URL of a component's own database, logged in as its own role: ``postgres.databases`` maps the
    component (its role) to its database, as :func:`fraudops.stack.postgres.init_databases` creates
    them. The one builder of these URLs (``driver`` "postgresql" gives a libpq DSN); the password is
    URL-quoted. ``password=False`` leaves it out, for a client that reads it from libpq's PGPASSFILE."""
    database = settings.postgres.databases[component]
    if not password:
        return f"{driver}://{component}@{_postgres(settings)}/{database}"
    quoted = quote(secrets[ROLE_PASSWORDS[component]], safe="")
    return f"{driver}://{component}:{quoted}@{_postgres(settings)}/{database}"


def _role_url(settings: Settings, role: str, password: str, database: str) -> str:
    return f"postgresql://{role}:{quote(password, safe='')}@{_postgres(settings)}/{database}"


# the secrets holding the passwords of the roles beside the components' own (FRAUD_ROLES below)
MONITOR_DB_PASSWORD = "MONITOR_DB_PASSWORD"
CONSOLE_DB_PASSWORD = "CONSOLE_DB_PASSWORD"
SCORER_DB_PASSWORD = "SCORER_DB_PASSWORD"
PIPELINE_DB_PASSWORD = "PIPELINE_DB_PASSWORD"
PRODUCER_DB_PASSWORD = "PRODUCER_DB_PASSWORD"

# who logs in to the fraud database beside its owner (the ``fraud`` role, which only the init step uses):
# who -> (the setting naming its role, the secret holding its password). What each may do there is
# :data:`fraudops.stack.postgres.FRAUD_GRANTS`.
FRAUD_ROLES: dict[str, tuple[Callable[[Settings], str], str]] = {
    "console": (lambda s: s.console.db_role, CONSOLE_DB_PASSWORD),
    "scorer": (lambda s: s.postgres.scorer_role, SCORER_DB_PASSWORD),
    "pipeline": (lambda s: s.postgres.pipeline_role, PIPELINE_DB_PASSWORD),
    "producer": (lambda s: s.postgres.producer_role, PRODUCER_DB_PASSWORD),
    # the metrics exporters' role: pg_monitor in the postgres database, and the platform exporter's one read
    "monitor": (lambda s: s.postgres.monitor_role, MONITOR_DB_PASSWORD),
}


def fraud_role(settings: Settings, who: str) -> str:
    """The name of ``who``'s login role in the fraud database (a key of :data:`FRAUD_ROLES`)."""
    return FRAUD_ROLES[who][0](settings)


def fraud_role_dsn(settings: Settings, secrets: Mapping[str, str], who: str) -> str:
    """libpq URL of the ``fraud`` database for ``who``'s own login role (a key of :data:`FRAUD_ROLES`)."""
    role_of, password = FRAUD_ROLES[who]
    database = settings.postgres.databases["fraud"]
    return _role_url(settings, role_of(settings), secrets[password], database)


def monitor_dsn(settings: Settings, secrets: Mapping[str, str]) -> str:
    """libpq URL of the ``postgres`` database for the metrics exporters' role (pg_monitor)."""
    return _role_url(settings, settings.postgres.monitor_role, secrets[MONITOR_DB_PASSWORD], "postgres")


def console_dsn(settings: Settings, secrets: Mapping[str, str]) -> str:
    """The analyst console's role: reads what it shows, writes analyst labels."""
    return fraud_role_dsn(settings, secrets, "console")


def scorer_dsn(settings: Settings, secrets: Mapping[str, str]) -> str:
    """The streaming scorer's role: reads history, appends scores and alerts."""
    return fraud_role_dsn(settings, secrets, "scorer")


def pipeline_dsn(settings: Settings, secrets: Mapping[str, str]) -> str:
    """The retraining pipeline's role (its steps, the DAG's tasks, promote / rollback, the drift check):
    reads transactions and labels, writes the audit log and drift reports."""
    return fraud_role_dsn(settings, secrets, "pipeline")


def producer_dsn(settings: Settings, secrets: Mapping[str, str]) -> str:
    """The producer's role (the stream's label feed, the history loader of bootstrap, simulate and the
    demo): appends transactions and labels."""
    return fraud_role_dsn(settings, secrets, "producer")
