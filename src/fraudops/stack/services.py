"""Definitions of the native stack's services: command, environment, health probe and URL of each."""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fraudops.config.settings import Settings
from fraudops.connections import ROLE_PASSWORDS, component_url, superuser_dsn
from fraudops.private_files import write_private
from fraudops.stack import health
from fraudops.stack.airflow_env import FLOWER_USER, airflow_process_environment, write_airflow_config
from fraudops.stack.health import Health, Probe
from fraudops.stack.install import postgres_bindir
from fraudops.stack.kafka_nodes import java_command, jmx_agent, node_name, prepare_node
from fraudops.stack.layout import StackLayout
from fraudops.stack.postgres import service_user
from fraudops.stack.process import ProcessSpec
from fraudops.stack.service_secrets import aws_credentials, env_file, pgpass, secrets_dir
from fraudops.stack.spark_cluster import (
    daemon_env,
    driver_health,
    master_args,
    master_health,
    spark_home,
    worker_args,
    worker_health,
)
from fraudops.storage import S3_REGION


@dataclass(frozen=True)
class ServiceDef:
    spec: ProcessSpec
    probe: Probe
    url: str
    prepare: Callable[[], None] | None = None
    start_timeout: float = 90.0
    # not started by `up` (the scorer needs a champion model first; the Spark cluster when spark.master
    # sends the scorer elsewhere); `status` does not fail when it is off
    optional: bool = False
    # services `start` brings up first when they are not running (the scorer's Spark cluster)
    requires: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name


# the `airflow` arguments of the components that would serve task logs: none does (see _airflow)
AIRFLOW_COMMANDS: dict[str, tuple[str, ...]] = {
    "airflow-triggerer": ("triggerer", "--skip-serve-logs"),
    "airflow-worker": ("celery", "worker", "--skip-serve-logs"),
}


def venv_bin(tool: str) -> str:
    """Console scripts of the interpreter running us (the project's venv)."""
    return str(Path(sys.executable).parent / tool)


def _postgres(settings: Settings, secrets: Mapping[str, str], layout: StackLayout) -> ServiceDef:
    def probe() -> Health:
        import psycopg2

        psycopg2.connect(superuser_dsn(settings, secrets), connect_timeout=2).close()
        return Health(True, "accepting connections")

    ports = settings.stack.ports
    return ServiceDef(
        ProcessSpec(
            "postgres",
            [
                str(postgres_bindir() / "postgres"),
                "-D",
                str(layout.data_of("postgres")),
                "-c",
                f"listen_addresses={settings.stack.host}",
                "-p",
                str(ports.postgres),
                "-c",
                f"unix_socket_directories={layout.run / 'postgres'}",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
            ],
            user=service_user(),
            # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave
            stop_signal=signal.SIGINT,
        ),
        health.guarded(probe),
        f"postgresql://{settings.stack.host}:{ports.postgres} (databases: "
        f"{', '.join(settings.postgres.databases.values())})",
    )


def _redis(settings: Settings, secrets: Mapping[str, str], layout: StackLayout) -> ServiceDef:
    conf = layout.run / "redis.conf"

    def prepare() -> None:
        layout.data_of("redis").mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"bind {settings.stack.host}\nport {settings.stack.ports.redis}\n"
            f"dir {layout.data_of('redis')}\nrequirepass {secrets['REDIS_PASSWORD']}\n"
            "appendonly yes\nprotected-mode yes\ndaemonize no\n"
        )
        conf.chmod(0o600)

    def probe() -> Health:
        import redis

        client = redis.Redis(
            host=settings.stack.host,
            port=settings.stack.ports.redis,
            password=secrets["REDIS_PASSWORD"],
            socket_timeout=2,
        )
        return Health(bool(client.ping()), "PONG")

    return ServiceDef(
        ProcessSpec("redis", ["redis-server", str(conf)]),
        health.guarded(probe),
        f"redis://{settings.stack.host}:{settings.stack.ports.redis}",
        prepare,
    )


def _minio(settings: Settings, secrets: Mapping[str, str], layout: StackLayout) -> ServiceDef:
    host, ports = settings.stack.host, settings.stack.ports
    data = layout.data_of("minio")
    # the root key, which the server needs to run (it administers the users the init step creates)
    root_file = secrets_dir(layout) / "minio-root.env"

    def prepare() -> None:
        data.mkdir(parents=True, exist_ok=True)
        keys = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")
        write_private(root_file, env_file({key: secrets[key] for key in keys}))

    return ServiceDef(
        ProcessSpec(
            "minio",
            [
                str(layout.bin / "minio"),
                "server",
                "--quiet",
                "--address",
                f"{host}:{ports.minio_api}",
                "--console-address",
                f"{host}:{ports.minio_console}",
                str(data),
            ],
            env={
                "MINIO_CONFIG_ENV_FILE": str(root_file),
                # Prometheus scrapes /minio/v2/metrics without a token: the API listens on stack.host only
                "MINIO_PROMETHEUS_AUTH_TYPE": "public",
            },
        ),
        health.guarded(lambda: health.http(f"http://{host}:{ports.minio_api}/minio/health/live")),
        f"http://{host}:{ports.minio_console} (console), http://{host}:{ports.minio_api} (S3)",
        prepare,
    )


def mlflow_secret_files(layout: StackLayout) -> tuple[Path, Path]:
    """(libpq password file, AWS credentials file) of the MLflow server."""
    return secrets_dir(layout) / "mlflow.pgpass", secrets_dir(layout) / "mlflow.aws-credentials"


def write_mlflow_secrets(settings: Settings, secrets: Mapping[str, str], layout: StackLayout) -> None:
    pgpass_file, aws_file = mlflow_secret_files(layout)
    host, port = settings.host_of("postgres"), settings.stack.ports.postgres
    database = settings.postgres.databases["mlflow"]
    write_private(pgpass_file, pgpass(host, port, database, "mlflow", secrets[ROLE_PASSWORDS["mlflow"]]))
    # MLflow's own MinIO user: the artifact bucket only
    write_private(aws_file, aws_credentials(secrets["MINIO_MLFLOW_USER"], secrets["MINIO_MLFLOW_SECRET_KEY"]))


def mlflow_server_env(settings: Settings, layout: StackLayout) -> dict[str, str]:
    """No secret: the URL has no password (libpq reads PGPASSFILE), boto3 reads the credentials file."""
    pgpass_file, aws_file = mlflow_secret_files(layout)
    return {
        "MLFLOW_BACKEND_STORE_URI": component_url(settings, {}, "mlflow", password=False),
        "PGPASSFILE": str(pgpass_file),
        "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{settings.minio.buckets.mlflow_artifacts}",
        "MLFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "AWS_SHARED_CREDENTIALS_FILE": str(aws_file),
        "AWS_DEFAULT_REGION": S3_REGION,
        # the job runner forks a process pool of ~2 GB that the platform does not use
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def mlflow_auth_config(layout: StackLayout) -> Path:
    """The basic-auth configuration the native MLflow reads (generated at each start, mode 600)."""
    return layout.run / "mlflow-basic-auth.ini"


def _mlflow(settings: Settings, secrets: Mapping[str, str], layout: StackLayout) -> ServiceDef:
    from fraudops.stack.mlflow_auth import server_env, write_auth_config

    host, port = settings.stack.host, settings.stack.ports.mlflow
    # the name clients use too: a container's (stack.hosts.mlflow) in compose
    names = dict.fromkeys((host, settings.host_of("mlflow"), "localhost", "127.0.0.1"))
    # any port: a client on the host may reach a published port other than the server's own
    allowed = ",".join(f"{h}{p}" for h in names for p in ("", ":*"))
    metrics = layout.data_of("mlflow-metrics")
    auth_config = mlflow_auth_config(layout)

    def prepare() -> None:
        # a new server starts its counters at zero: samples of the previous one's workers would add up
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir(parents=True)
        write_mlflow_secrets(settings, secrets, layout)
        write_auth_config(auth_config, settings, secrets)

    return ServiceDef(
        ProcessSpec(
            "mlflow",
            [
                venv_bin("mlflow"),
                "server",
                "--host",
                host,
                "--port",
                str(port),
                "--serve-artifacts",
                # MLflow's basic auth, /metrics readable by any account (fraudops.mlflow_auth)
                "--app-name",
                "fraudops-basic-auth",
                "--workers",
                str(settings.mlflow.workers),
                "--allowed-hosts",
                allowed,
                # /metrics (prometheus-flask-exporter, its samples in this folder across workers)
                "--expose-prometheus",
                str(metrics),
            ],
            env={**mlflow_server_env(settings, layout), **server_env(auth_config)},
        ),
        health.guarded(lambda: health.http(f"http://{host}:{port}/health")),
        f"http://{host}:{port}",
        prepare,
        start_timeout=120.0,
    )


def _kafka(settings: Settings, layout: StackLayout, node_id: int) -> ServiceDef:
    host, port = settings.stack.host, settings.stack.ports.kafka[node_id - 1]
    props = layout.run / f"{node_name(node_id)}.properties"

    def probe() -> Health:
        from confluent_kafka.admin import AdminClient

        port_check = health.tcp(host, port)
        if not port_check.ok:
            return port_check
        admin = AdminClient({"bootstrap.servers": f"{host}:{port}"})
        brokers = admin.list_topics(timeout=5).brokers
        if node_id not in brokers:
            return Health(False, f"not in cluster metadata (brokers {sorted(brokers)})")
        return Health(True, f"in cluster of {len(brokers)} brokers")

    return ServiceDef(
        ProcessSpec(
            node_name(node_id),
            java_command(
                layout,
                settings.stack.memory.kafka_heap,
                "kafka.Kafka",
                str(props),
                agents=(jmx_agent(settings, layout, node_id),) if (layout.lib / "jmx").is_dir() else (),
            ),
        ),
        health.guarded(probe),
        f"{host}:{port}",
        lambda: prepare_node(settings, layout, node_id) and None,
        start_timeout=120.0,
    )


def _airflow(settings: Settings, secrets: Mapping[str, str]) -> list[ServiceDef]:
    env = airflow_process_environment(settings, secrets)
    host, port = settings.stack.host, settings.stack.ports.airflow

    def write_config() -> None:
        write_airflow_config(settings, secrets)

    api = f"http://{host}:{port}"

    def component(name: str) -> Probe:
        def probe() -> Health:
            import requests

            status = requests.get(f"{api}/api/v2/monitor/health", timeout=3).json()[name]["status"]
            return Health(status == "healthy", status)

        return health.guarded(probe)

    def worker_probe() -> Health:
        import requests

        workers = requests.get(
            f"http://{host}:{settings.stack.ports.flower}/api/workers?refresh=1",
            auth=(FLOWER_USER, secrets["FLOWER_PASSWORD"]),
            timeout=10,
        ).json()
        return Health(bool(workers), f"{len(workers)} celery worker(s) online")

    def spec(name: str, *args: str) -> ProcessSpec:
        return ProcessSpec(name, [venv_bin("airflow"), *args], env=env)

    # every component rewrites airflow.cfg (the same content) when it starts: a restart of one picks up
    # changed secrets
    return [
        ServiceDef(
            spec("airflow-apiserver", "api-server"),
            health.guarded(lambda: health.http(f"{api}/api/v2/monitor/health")),
            f"{api} (UI + REST API)",
            write_config,
            start_timeout=120.0,
        ),
        ServiceDef(spec("airflow-scheduler", "scheduler"), component("scheduler"), "scheduler", write_config),
        ServiceDef(
            spec("airflow-dag-processor", "dag-processor"),
            component("dag_processor"),
            "dag-processor",
            write_config,
        ),
        # no log server (Airflow binds it to every interface): the api-server reads the task logs from the
        # log folder every component shares (native: one AIRFLOW_HOME; compose: one volume)
        ServiceDef(
            spec("airflow-triggerer", *AIRFLOW_COMMANDS["airflow-triggerer"]),
            component("triggerer"),
            "triggerer",
            write_config,
        ),
        ServiceDef(
            spec("airflow-worker", *AIRFLOW_COMMANDS["airflow-worker"]),
            health.guarded(worker_probe),
            "celery worker",
            write_config,
            start_timeout=120.0,
        ),
        ServiceDef(
            spec("flower", "celery", "flower"),
            health.guarded(lambda: health.http(f"http://{host}:{settings.stack.ports.flower}/healthcheck")),
            f"http://{host}:{settings.stack.ports.flower}",
            write_config,
        ),
    ]


def _uses_native_cluster(settings: Settings) -> bool:
    return settings.spark_master_url == settings.native_spark_master_url


def _spark_cluster(settings: Settings, layout: StackLayout) -> list[ServiceDef]:
    """A standalone master and one worker; `up` skips them when the scorer runs elsewhere (spark.master)."""
    host, ports = settings.stack.host, settings.stack.ports
    home = spark_home()
    spark_class = str(home / "bin" / "spark-class")
    env = daemon_env(settings, home)
    master_ui = f"http://{host}:{ports.spark_master_ui}"
    worker_ui = f"http://{host}:{ports.spark_worker_ui}"
    work_dir = layout.data_of("spark-worker")
    optional = not _uses_native_cluster(settings)
    return [
        ServiceDef(
            ProcessSpec("spark-master", [spark_class, *master_args(settings, host)], env=env),
            health.guarded(lambda: master_health(master_ui)),
            f"{settings.native_spark_master_url} (UI {master_ui})",
            optional=optional,
        ),
        ServiceDef(
            ProcessSpec(
                "spark-worker",
                [
                    spark_class,
                    *worker_args(settings, settings.native_spark_master_url, str(work_dir), host),
                ],
                env=env,
            ),
            health.guarded(lambda: worker_health(worker_ui, master_ui)),
            f"{worker_ui} ({settings.spark.worker_cores} slots, {settings.spark.worker_memory})",
            lambda: work_dir.mkdir(parents=True, exist_ok=True),
            optional=optional,
            requires=("spark-master",),
        ),
    ]


def _spark_scorer(settings: Settings, layout: StackLayout) -> ServiceDef:
    host, port = settings.stack.host, settings.stack.ports.spark_ui
    return ServiceDef(
        ProcessSpec(
            "spark-scorer",
            # restarted with backoff when it exits with an error, as compose's restart policy does
            [
                sys.executable,
                "-m",
                "fraudops.stack.supervise",
                "--state",
                str(layout.supervisor_state_of("spark-scorer")),
                "--",
                sys.executable,
                str(settings.project_root / "spark-jobs" / "score_transactions.py"),
            ],
            cwd=settings.project_root,
            env={"PYTHONUNBUFFERED": "1"},
            stop_timeout=60.0,
        ),
        health.guarded(lambda: driver_health(f"http://{host}:{port}")),
        f"http://{host}:{port} (Spark UI of the scorer, on {settings.spark_master_url})",
        # Spark start-up, then the champion's download
        start_timeout=180.0,
        optional=True,
        requires=("spark-master", "spark-worker") if _uses_native_cluster(settings) else (),
    )


def _monitoring(settings: Settings, secrets: Mapping[str, str], layout: StackLayout) -> list[ServiceDef]:
    from fraudops.stack import monitoring

    services = monitoring.monitoring_services(settings, secrets, layout)

    def prepare(name: str) -> Callable[[], None]:
        # each start writes the generated configuration (webhook URL and Flower password from env/) and
        # the exporters' password files
        def run() -> None:
            monitoring.prepare(settings, secrets, layout)
            monitoring.write_secret_files(name, settings, secrets, layout)

        return run

    return [ServiceDef(spec, probe, url, prepare(spec.name)) for spec, probe, url in services]


def _console(settings: Settings) -> ServiceDef:
    """The analyst console (Streamlit, src/fraudops/console), logged in to Postgres as console.db_role."""
    host, port = settings.stack.host, settings.stack.ports.console
    return ServiceDef(
        ProcessSpec(
            "console",
            [venv_bin("fraudops"), "console", "serve"],
            cwd=settings.project_root,
            env={"PYTHONUNBUFFERED": "1"},
        ),
        health.guarded(lambda: health.http(f"http://{host}:{port}/_stcore/health")),
        f"http://{host}:{port} (login: users in {settings.console.users_file}, first passwords in"
        " env/console.env)",
    )


# the services a container runs as the native stack does (`fraudops stack exec NAME`): the same preparation
# (generated secret files) and the same process, so compose cannot drift from `make up`
CONTAINER_SERVICES: dict[str, Callable[[Settings, Mapping[str, str], StackLayout], ServiceDef]] = {
    "mlflow": _mlflow,
}


def build_services(
    settings: Settings, secrets: Mapping[str, str], layout: StackLayout
) -> dict[str, ServiceDef]:
    defs = [
        _postgres(settings, secrets, layout),
        _redis(settings, secrets, layout),
        _minio(settings, secrets, layout),
        _mlflow(settings, secrets, layout),
        *(_kafka(settings, layout, i) for i in range(1, len(settings.stack.ports.kafka) + 1)),
        *_airflow(settings, secrets),
        *_spark_cluster(settings, layout),
        _spark_scorer(settings, layout),
        *_monitoring(settings, secrets, layout),
        _console(settings),
    ]
    return {d.name: d for d in defs}
