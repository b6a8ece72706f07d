"""The one typed settings object.

Non-secret settings come from ``configs/fraudops.yaml``; any key can be overridden from the environment as
``FRAUDOPS_<SECTION>__<KEY>``. Secrets come from the generated ``env/*.env`` files (see
:mod:`fraudops.secrets`), never from this object. Nothing here runs at import time: call
:func:`load_settings` once and pass the result on.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from fraudops.config.base import StrictModel
from fraudops.config.model import ModelSettings, SimulatorSettings, TrainingSettings
from fraudops.config.monitoring import DriftSettings, MonitoringSettings
from fraudops.config.pipeline import PipelineSettings
from fraudops.config.scorer import ScorerSettings

CONFIG_FILE = Path("configs") / "fraudops.yaml"


class Ports(StrictModel):
    postgres: int = 5432
    redis: int = 6379
    minio_api: int = 9000
    minio_console: int = 9001
    mlflow: int = 5000
    kafka: list[int] = Field(default_factory=lambda: [9092, 9093, 9094], min_length=1)
    kafka_controller: list[int] = Field(default_factory=lambda: [9192, 9193, 9194], min_length=1)
    airflow: int = 8080
    flower: int = 5555
    spark_ui: int = 4040
    spark_master: int = 7077
    spark_master_ui: int = 8082
    spark_worker_ui: int = 8083
    # the scheduler's health server (the native stack binds it to stack.host like every listener)
    airflow_scheduler_health: int = 8974
    # monitoring (not 9093: the second Kafka broker holds it)
    prometheus: int = 9090
    alertmanager: int = 9095
    # where the default alert webhook points (env/alertmanager.env: ALERT_WEBHOOK_URL empty)
    alert_webhook: int = 9097
    postgres_exporter: int = 9187
    redis_exporter: int = 9121
    # our own processes' /metrics
    scorer_metrics: int = 9108
    producer_metrics: int = 9109
    # Airflow's StatsD metrics (UDP) into statsd_exporter, which Prometheus scrapes on statsd_exporter
    statsd: int = 9125
    statsd_exporter: int = 9102
    # the Kafka brokers' JMX exporter agents, one per broker
    kafka_jmx: list[int] = Field(default_factory=lambda: [9404, 9405, 9406], min_length=1)
    # champion version, last retraining, drift (fraudops monitor exporter)
    platform_exporter: int = 9110
    # the analyst console (Streamlit)
    console: int = 8501


class Hosts(StrictModel):
    """Where clients reach each service. Empty means ``stack.host``; docker-compose sets service names."""

    postgres: str = ""
    redis: str = ""
    minio: str = ""
    mlflow: str = ""
    airflow: str = ""
    # where Airflow sends its StatsD metrics (compose: the statsd-exporter container)
    statsd: str = ""
    # what the console's operational panels ask
    prometheus: str = ""
    # where Prometheus scrapes each target (compose: its container's name)
    alertmanager: str = ""
    flower: str = ""
    postgres_exporter: str = ""
    redis_exporter: str = ""
    statsd_exporter: str = ""
    platform_exporter: str = ""
    scorer: str = ""
    producer: str = ""
    # the brokers' JMX exporter agents, one host per entry of stack.ports.kafka_jmx; empty: stack.host
    kafka_jmx: list[str] = Field(default_factory=list)


class Versions(StrictModel):
    kafka: str
    minio: str
    spark: str
    # Debian bookworm's packages (scripts/bootstrap.sh installs them; `make up` checks these versions)
    prometheus: str = "2.42.0"
    alertmanager: str = "0.25.0"
    postgres_exporter: str = "0.11.1"
    redis_exporter: str = "1.45.0"
    # built from its Go module (github.com/prometheus/statsd_exporter)
    statsd_exporter: str = "v0.28.0"


class Memory(StrictModel):
    kafka_heap: str = "384m"


class SparkSettings(StrictModel):
    """Where the scorer's Spark session runs, and the native stack's standalone cluster."""

    # spark://host:port of a standalone master, or local[N] (everything inside the scorer process); empty
    # means the native stack's master, spark://<stack.host>:<stack.ports.spark_master>
    master: str = ""
    # the address executors reach the driver (the scorer) at; empty means stack.host
    driver_host: str = ""
    # Spark's Kafka connector jars, shipped to the executors (spark.jars); relative to stack.data_dir, or
    # absolute. Empty: nothing to ship, the connector is on Spark's own class path everywhere (compose image)
    jars_dir: str = "lib/spark"
    # per application, on a cluster: task slots and heap of each executor, and the slots it takes in all
    # (0: every free slot of the cluster)
    executor_cores: int = Field(6, ge=1)
    executor_memory: str = "1g"
    cores_max: int = Field(6, ge=0)
    # the native worker: the slots and memory it offers to executors, and the heap of the master and
    # worker daemons themselves
    worker_cores: int = Field(12, ge=1)
    worker_memory: str = "2g"
    daemon_memory: str = "256m"


class StackSettings(StrictModel):
    host: str = "127.0.0.1"
    data_dir: Path = Path(".stack")
    ports: Ports = Ports()
    hosts: Hosts = Hosts()
    versions: Versions
    memory: Memory = Memory()


class PostgresSettings(StrictModel):
    superuser: str = "postgres"
    # the metrics exporters' login: Postgres's built-in pg_monitor role; of our tables, drift_reports (read)
    monitor_role: str = "fraudops_monitor"
    # the streaming scorer's login: reads history and labels, appends scores, alerts and its batches; no DDL
    scorer_role: str = "fraud_scorer"
    # the retraining pipeline's login: reads transactions and labels, writes model_metadata and drift_reports
    pipeline_role: str = "fraud_pipeline"
    # the producer's login (label feed, history loader): appends transactions and labels; no DDL, no DELETE
    producer_role: str = "fraud_producer"
    databases: dict[str, str] = Field(
        default_factory=lambda: {"airflow": "airflow", "mlflow": "mlflow", "fraud": "fraud"}
    )


class MinioBuckets(StrictModel):
    mlflow_artifacts: str = "mlflow-artifacts"
    lake: str = "fraud-lake"


class MinioSettings(StrictModel):
    buckets: MinioBuckets = MinioBuckets()
    # set to use another S3-compatible store; empty means the stack's MinIO
    endpoint_url: str = ""


class MlflowSettings(StrictModel):
    model_name: str = "fraud-detector"
    # the registry aliases: what production scores with (the scorer follows it, promotion moves it), and
    # the version before it (what a rollback returns to)
    champion_alias: str = "champion"
    previous_alias: str = "previous"
    workers: int = 1
    # empty means the stack's tracking server
    tracking_uri: str = ""


class KafkaSettings(StrictModel):
    topics_file: Path = Path("kafka/topics.yaml")
    # empty means the native stack's brokers on stack.host
    bootstrap_servers: str = ""


class AirflowSettings(StrictModel):
    admin_user: str = "admin"
    worker_concurrency: int = 2


class ConsoleSettings(StrictModel):
    # the Postgres role the console logs in as: reads what it shows, writes analyst labels, nothing else
    db_role: str = "fraud_console"
    # people and their roles (analyst, viewer) with scrypt password hashes; relative to the project root,
    # beside the generated secrets, never committed
    users_file: Path = Path("env/console-users.json")
    page_size: int = 50


class DockerSettings(StrictModel):
    # the Debian base of every image (docker/Dockerfile); built with debootstrap where it cannot be pulled
    base_image: str = "debian:12.15-slim"
    # the Go toolchain that builds MinIO in its image (the native stack uses the `go` on PATH)
    go_version: str = "1.26.8"
    # a PEM bundle of extra CA certificates every image build and container trusts; empty: none
    extra_ca_bundle: str = ""
    # docker compose's project name: prefix of its containers, networks and volumes
    project: str = "fraudops"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FRAUDOPS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    project_root: Path
    stack: StackSettings
    postgres: PostgresSettings = PostgresSettings()
    minio: MinioSettings = MinioSettings()
    mlflow: MlflowSettings = MlflowSettings()
    kafka: KafkaSettings = KafkaSettings()
    airflow: AirflowSettings = AirflowSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    model: ModelSettings = ModelSettings()
    training: TrainingSettings = TrainingSettings()
    pipeline: PipelineSettings = PipelineSettings()
    scorer: ScorerSettings = ScorerSettings()
    spark: SparkSettings = SparkSettings()
    docker: DockerSettings = DockerSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    drift: DriftSettings = DriftSettings()
    console: ConsoleSettings = ConsoleSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the YAML file arrives as init kwargs; the environment must win over it
        return (env_settings, init_settings)

    # -- derived locations -------------------------------------------------------------------------
    def path(self, relative: Path | str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.project_root / p

    @cached_property
    def data_dir(self) -> Path:
        return self.path(self.stack.data_dir)

    @cached_property
    def env_dir(self) -> Path:
        return self.project_root / "env"

    @cached_property
    def spark_jars_dir(self) -> Path | None:
        if not self.spark.jars_dir:
            return None
        jars = Path(self.spark.jars_dir)
        return jars if jars.is_absolute() else self.data_dir / jars

    def host_of(self, service: str) -> str:
        return getattr(self.stack.hosts, service) or self.stack.host

    @property
    def kafka_jmx_hosts(self) -> list[str]:
        """The host of each broker's JMX exporter agent, in the order of ``stack.ports.kafka_jmx``."""
        hosts = self.stack.hosts.kafka_jmx
        ports = self.stack.ports.kafka_jmx
        if hosts and len(hosts) != len(ports):
            raise ValueError(f"stack.hosts.kafka_jmx names {len(hosts)} hosts for {len(ports)} JMX ports")
        return hosts or [self.stack.host] * len(ports)

    # -- derived endpoints -------------------------------------------------------------------------
    @property
    def kafka_bootstrap_servers(self) -> str:
        if self.kafka.bootstrap_servers:
            return self.kafka.bootstrap_servers
        return ",".join(f"{self.stack.host}:{p}" for p in self.stack.ports.kafka)

    @property
    def native_spark_master_url(self) -> str:
        """The native stack's standalone master (`make up` starts it)."""
        return f"spark://{self.stack.host}:{self.stack.ports.spark_master}"

    @property
    def spark_master_url(self) -> str:
        """Where the scorer runs: ``spark.master``, else the native stack's cluster."""
        return self.spark.master or self.native_spark_master_url

    @property
    def spark_driver_host(self) -> str:
        return self.spark.driver_host or self.stack.host

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"http://{self.host_of('mlflow')}:{self.stack.ports.mlflow}"

    @property
    def s3_endpoint_url(self) -> str:
        return self.minio.endpoint_url or f"http://{self.host_of('minio')}:{self.stack.ports.minio_api}"

    @property
    def airflow_url(self) -> str:
        return f"http://{self.host_of('airflow')}:{self.stack.ports.airflow}"

    @property
    def flower_url(self) -> str:
        return f"http://{self.host_of('flower')}:{self.stack.ports.flower}"


def find_project_root(start: Path | None = None) -> Path:
    """The folder holding ``configs/fraudops.yaml``: $FRAUDOPS_HOME, else the nearest parent of ``start``."""
    home = os.environ.get("FRAUDOPS_HOME")
    if home:
        return Path(home).resolve()
    for candidate in [(start or Path.cwd()).resolve(), *(start or Path.cwd()).resolve().parents]:
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    # an editable install knows where its sources are
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise FileNotFoundError(f"no {CONFIG_FILE} above {start or Path.cwd()}; set FRAUDOPS_HOME")


class SettingsError(ValueError):
    pass


def topics_missing_from_spec(config: Settings) -> dict[str, str]:
    """The topics ``config`` names (the scorer's and the reload signal's) that the topic spec lacks."""
    from fraudops.signals import MODEL_UPDATES_TOPIC
    from fraudops.topics import load_topic_specs

    named = {
        "scorer.source_topic": config.scorer.source_topic,
        "scorer.predictions_topic": config.scorer.predictions_topic,
        "scorer.dead_letters_topic": config.scorer.dead_letters_topic,
        "signals.MODEL_UPDATES_TOPIC": MODEL_UPDATES_TOPIC,
    }
    spec = {s.name for s in load_topic_specs(config.path(config.kafka.topics_file))}
    return {key: name for key, name in named.items() if name not in spec}


def load_settings(project_root: Path | None = None, **overrides: Any) -> Settings:
    root = project_root or find_project_root()
    raw: dict[str, Any] = yaml.safe_load((root / CONFIG_FILE).read_text()) or {}
    raw.update(overrides)
    settings = Settings(project_root=root, **raw)
    # the file's own topics must exist in the spec the stack creates (a FRAUDOPS_SCORER__* override may
    # name any topic: tests and operators point a scorer at scratch topics)
    if settings.path(settings.kafka.topics_file).is_file():
        as_written = Settings.model_construct(
            project_root=root, kafka=settings.kafka, scorer=ScorerSettings(**raw.get("scorer", {}))
        )
        missing = topics_missing_from_spec(as_written)
        if missing:
            raise SettingsError(
                f"{CONFIG_FILE} names topics that {settings.kafka.topics_file} does not create: "
                + ", ".join(f"{key}={name}" for key, name in missing.items())
            )
    return settings
