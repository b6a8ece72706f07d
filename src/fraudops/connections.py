"""Connection strings of every component, built in one place from the settings and the secrets: the
native stack, the compose init step, the pipeline, the scorer and the producer all log in through these."""

from __future__ import annotations

from collections.abc import Mapping
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
    settings: Settings, secrets: Mapping[str, str], component: str, driver: str = "postgresql+psycopg2"
) -> str:
    """URL of a component's own database, logged in as its own role: ``postgres.databases`` maps the
    component (its role) to its database, as :func:`fraudops.stack.postgres.init_databases` creates
    them. The one builder of these URLs (``driver`` "postgresql" gives a libpq DSN); the password is
    URL-quoted."""
    database = settings.postgres.databases[component]
    password = quote(secrets[ROLE_PASSWORDS[component]], safe="")
    return f"{driver}://{component}:{password}@{_postgres(settings)}/{database}"


def _role_url(settings: Settings, role: str, password: str, database: str) -> str:
    return f"postgresql://{role}:{quote(password, safe='')}@{_postgres(settings)}/{database}"


# the secrets holding the passwords of the roles beside the components' own: the metrics exporter's
# (postgres.monitor_role), the console's (console.db_role), the streaming scorer's (postgres.scorer_role)
MONITOR_DB_PASSWORD = "MONITOR_DB_PASSWORD"
CONSOLE_DB_PASSWORD = "CONSOLE_DB_PASSWORD"
SCORER_DB_PASSWORD = "SCORER_DB_PASSWORD"


def monitor_dsn(settings: Settings, secrets: Mapping[str, str]) -> str:
    """libpq URL of the ``postgres`` database for the metrics exporter's role (pg_monitor, nothing else)."""
    return _role_url(settings, settings.postgres.monitor_role, secrets[MONITOR_DB_PASSWORD], "postgres")


def console_dsn(settings: Settings, secrets: Mapping[str, str]) -> str:
    """libpq URL of the ``fraud`` database for the analyst console's own role (reads what it shows, writes
    analyst labels: :func:`fraudops.stack.postgres.init_console_role`)."""
    database = settings.postgres.databases["fraud"]
    return _role_url(settings, settings.console.db_role, secrets[CONSOLE_DB_PASSWORD], database)


def scorer_dsn(settings: Settings, secrets: Mapping[str, str]) -> str:
    """libpq URL of the ``fraud`` database for the streaming scorer's own role (reads history, appends
    scores and alerts: :func:`fraudops.stack.postgres.init_scorer_role`)."""
    database = settings.postgres.databases["fraud"]
    return _role_url(settings, settings.postgres.scorer_role, secrets[SCORER_DB_PASSWORD], database)
