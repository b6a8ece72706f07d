"""The whole Airflow configuration, derived from settings and secrets.

Both the native stack and the docker-compose entrypoint (`fraudops stack airflow-env`) use these functions,
so the two cannot drift apart. The secret options (database and broker URLs, keys) go to a mode-600
``airflow.cfg`` that ``AIRFLOW_CONFIG`` names; the environment, which every task and every program a task
starts inherits, keeps the rest. Airflow lets an ``AIRFLOW__...`` variable override the file, so no secret
option may stay in the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fraudops.config.settings import Settings
from fraudops.connections import component_url, redis_url
from fraudops.private_files import write_private
from fraudops.stack.service_secrets import airflow_cfg, split_env_options

# users and roles (Admin, Op, User, Viewer, custom ones) kept in the metadata database, managed in the UI
# (Security menu) or with `airflow users ...`; the REST API takes the same accounts (POST /auth/token)
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
FLOWER_USER = "flower"
# the options of airflow_environment that carry a password or key: airflow.cfg, never the environment
AIRFLOW_SECRET_OPTIONS = frozenset(
    {
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__FLOWER_BASIC_AUTH",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
    }
)


def airflow_home(settings: Settings) -> Path:
    return settings.data_dir / "data" / "airflow"


def airflow_config_file(settings: Settings) -> Path:
    """Airflow's own default place (``$AIRFLOW_HOME/airflow.cfg``): one volume for every container."""
    return airflow_home(settings) / "airflow.cfg"


def airflow_process_environment(settings: Settings, secrets: Mapping[str, str]) -> dict[str, str]:
    """The environment of an Airflow process: the non-secret options and ``AIRFLOW_CONFIG``, the file
    :func:`write_airflow_config` writes."""
    public, _ = split_env_options(airflow_environment(settings, secrets), AIRFLOW_SECRET_OPTIONS)
    return {**public, "AIRFLOW_CONFIG": str(airflow_config_file(settings))}


def write_airflow_config(settings: Settings, secrets: Mapping[str, str]) -> Path:
    """Write the secret options to ``airflow.cfg`` (mode 600), before any Airflow process starts."""
    _, secret = split_env_options(airflow_environment(settings, secrets), AIRFLOW_SECRET_OPTIONS)
    return write_private(airflow_config_file(settings), airflow_cfg(secret))


def airflow_environment(settings: Settings, secrets: Mapping[str, str]) -> dict[str, str]:
    """Every option, as ``AIRFLOW__...`` variables (split by :func:`airflow_process_environment`)."""
    api_host = settings.host_of("airflow")
    port = settings.stack.ports.airflow
    database = component_url(settings, secrets, "airflow")
    return {
        "AIRFLOW_HOME": str(airflow_home(settings)),
        "FRAUDOPS_HOME": str(settings.project_root),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.path("dags")),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.path("plugins")),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": secrets["AIRFLOW__CORE__FERNET_KEY"],
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        # workers report task state to the api-server; without this every task fails
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{api_host}:{port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CELERY__BROKER_URL": redis_url(settings, secrets),
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database.replace("+psycopg2", ""),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(settings.airflow.worker_concurrency),
        "AIRFLOW__CELERY__FLOWER_HOST": settings.stack.host,
        "AIRFLOW__CELERY__FLOWER_PORT": str(settings.stack.ports.flower),
        "AIRFLOW__CELERY__FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{secrets['FLOWER_PASSWORD']}",
        "AIRFLOW__API__HOST": settings.stack.host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets["AIRFLOW__API__SECRET_KEY"],
        # one JWT secret for every component, or workers cannot talk to the api-server
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets["AIRFLOW__API_AUTH__JWT_SECRET"],
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        # Airflow binds it to every interface unless told
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": settings.stack.host,
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(
            settings.stack.ports.airflow_scheduler_health
        ),
        # a task whose worker died is failed (and retried) after a minute, not the default five
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        # MLflow's telemetry thread mutates os.environ while requests iterates it (KeyError in tasks)
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home(settings) / "logs"),
        # DAG and task durations, failures, scheduler heartbeats: StatsD to statsd_exporter (Prometheus)
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": settings.host_of("statsd"),
        "AIRFLOW__METRICS__STATSD_PORT": str(settings.stack.ports.statsd),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
