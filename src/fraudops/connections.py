"""Connection strings of every component, built in one place from the settings and the secrets: the
native stack, the compose init step, the pipeline, the scorer and the producer all log in through these."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from fraudops.settings import Settings

# component -> the secret holding its role's password
ROLE_PASSWORDS = {
    "airflow": "AIRFLOW_DB_PASSWORD",
    "mlflow": "MLFLOW_DB_PASSWORD",
    "fraud": "FRAUD_DB_PASSWORD",
}


def superuser_dsn(settings: Settings, secrets: Mapping[str, str], database: str = "postgres") -> str:
    user = secrets.get("POSTGRES_USER", settings.postgres.superuser)
    return (
        f"host={settings.host_of('postgres')} port={settings.stack.ports.postgres} dbname={database} "
        f"user={user} password={secrets['POSTGRES_PASSWORD']}"
    )


def component_url(
    settings: Settings, secrets: Mapping[str, str], component: str, driver: str = "postgresql+psycopg2"
) -> str:
    """URL of a component's own database, logged in as its own role: ``postgres.databases`` maps the
    component (its role) to its database, as :func:`fraudops.stack.postgres.init_databases` creates
    them. The one builder of these URLs (``driver`` "postgresql" gives a libpq DSN); the password is
    URL-quoted."""
    database = settings.postgres.databases[component]
    password = quote(secrets[ROLE_PASSWORDS[component]], safe="")
    return (
        f"{driver}://{component}:{password}@{settings.host_of('postgres')}:"
        f"{settings.stack.ports.postgres}/{database}"
    )


# the secret holding the password of the console's role (console.db_role)
CONSOLE_DB_PASSWORD = "CONSOLE_DB_PASSWORD"


def console_dsn(settings: Settings, secrets: Mapping[str, str]) -> str:
    """libpq DSN of the ``fraud`` database for the analyst console's own role (reads what it shows, writes
    analyst labels: :func:`fraudops.stack.postgres.init_console_role`)."""
    password = quote(secrets[CONSOLE_DB_PASSWORD], safe="")
    return (
        f"postgresql://{settings.console.db_role}:{password}@{settings.host_of('postgres')}:"
        f"{settings.stack.ports.postgres}/{settings.postgres.databases['fraud']}"
    )
