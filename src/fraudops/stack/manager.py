"""`up`, `down`, `status`, `logs`, `clean` of the native stack."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fraudops.config.settings import Settings
from fraudops.console.users import ensure_console_users
from fraudops.secrets import ensure_secrets, load_secrets, secrets_generated
from fraudops.stack import install, process
from fraudops.stack.airflow_init import AirflowInitError, init_airflow
from fraudops.stack.health import Health
from fraudops.stack.layout import StackLayout
from fraudops.stack.mlflow_auth import init_accounts
from fraudops.stack.postgres import init_databases, initdb
from fraudops.stack.services import ServiceDef, build_services, venv_bin
from fraudops.stack.supervise import last_error_line, read_state
from fraudops.storage import ensure_buckets, ensure_users
from fraudops.topics import create_topics, load_topic_specs

Log = Callable[[str], None]


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    health: Health
    url: str
    memory_mib: float = 0.0
    optional: bool = False
    # started, then gone without `down`: a crash, whether the service is optional or not
    died: bool = False

    @property
    def acceptable(self) -> bool:
        return self.health.ok or (self.optional and self.pid is None and not self.died)


class _NeverSetUp(dict):
    """Stands in for the secrets of a stack that was never brought up: every key reads as empty."""

    def __missing__(self, key: str) -> str:
        return ""


class Stack:
    def __init__(self, settings: Settings, log: Log = print) -> None:
        self.settings = settings
        self.layout = StackLayout(settings.data_dir)
        self.log = log

    def _secrets(self) -> Mapping[str, str]:
        return load_secrets(self.settings.env_dir)

    def was_set_up(self) -> bool:
        """Whether `up` ever ran here: it generates the secrets before it starts anything."""
        return secrets_generated(self.settings.env_dir)

    def services(self) -> dict[str, ServiceDef]:
        # before the first `up` no service can run, so status and down need no real secret to say so
        secrets = self._secrets() if self.was_set_up() else _NeverSetUp()
        return build_services(self.settings, secrets, self.layout)

    # -- up ------------------------------------------------------------------------------------------
    def up(self) -> list[ServiceStatus]:
        started = time.monotonic()
        for name, keys in ensure_secrets(self.settings.env_dir).items():
            self.log(f"generated secrets in env/{name}: {', '.join(keys)}")
        for name in ensure_console_users(self.settings):
            self.log(f"created console user {name} in {self.settings.console.users_file}")
        secrets = self._secrets()
        install.ensure_all(self.settings, self.layout, self.log)
        services = self.services()

        initdb(
            install.postgres_bindir(),
            self.layout.data_of("postgres"),
            self.layout.run / "postgres",
            self.settings.postgres.superuser,
            secrets["POSTGRES_PASSWORD"],
        )
        self._start(services["postgres"])
        # the independent servers start together; each is awaited just before something needs it. The Spark
        # master and worker are the scorer's cluster, unless spark.master sends the scorer elsewhere
        spark = [n for n in ("spark-master", "spark-worker") if not services[n].optional]
        for name in ("redis", "minio", *self._kafka_names(), *spark[:1]):
            self._start(services[name])
        self._wait(services["postgres"])
        init_databases(self.settings, secrets)
        self._start(services["console"])
        self._wait(services["minio"])
        ensure_buckets(self.settings, secrets)
        ensure_users(self.settings, secrets)
        self._start(services["mlflow"])
        self._wait(services["redis"])
        self._init_airflow(secrets)
        airflow = [n for n in services if n.startswith("airflow-") or n == "flower"]
        for name in airflow:
            self._start(services[name])
        for name in self._kafka_names():
            self._wait(services[name])
        topics = create_topics(
            self.settings.kafka_bootstrap_servers,
            load_topic_specs(self.settings.path(self.settings.kafka.topics_file)),
        )
        self.log("kafka topics: " + ", ".join(f"{t} ({s})" for t, s in topics.items()))
        # the worker registers with a master that answers
        for name in spark[:1]:
            self._wait(services[name])
        for name in spark[1:]:
            self._start(services[name])
        for name in ("mlflow", *airflow, *spark[1:], "console"):
            self._wait(services[name])
        # the accounts the clients sign in with (the platform exporter, started next, is one of them)
        accounts = init_accounts(self.settings, secrets)
        self.log("mlflow accounts: " + ", ".join(accounts.values()))
        self._up_monitoring(services)
        self.log(f"stack up in {time.monotonic() - started:.0f} s")
        return self.status()

    def _up_monitoring(self, services: Mapping[str, ServiceDef]) -> None:
        # last: their targets are up by now, so a fresh stack starts with no ServiceDown alert
        names = (
            "alertmanager",
            "prometheus",
            "postgres-exporter",
            "redis-exporter",
            "statsd-exporter",
            "platform-exporter",
        )
        for name in names:
            self._start(services[name])
        for name in names:
            self._wait(services[name])

    def start(self, names: list[str]) -> None:
        """(Re)start the named services of a stack that was brought up before, and wait until healthy."""
        services = self.services()
        # what they require first (the scorer's Spark cluster), each started and healthy before the next
        for name in self._requirements(services, names):
            self._start(services[name])
            self._wait(services[name])
        for name in names:
            self._start(services[name])
        for name in names:
            self._wait(services[name])

    @staticmethod
    def _requirements(services: Mapping[str, ServiceDef], names: list[str]) -> list[str]:
        """The services ``names`` require, transitively, in start order; the named ones excluded."""
        ordered: list[str] = []

        def visit(name: str) -> None:
            for required in services[name].requires:
                if required not in ordered:
                    visit(required)
                    ordered.append(required)

        for name in names:
            visit(name)
        return [n for n in ordered if n not in names]

    def _kafka_names(self) -> list[str]:
        return [f"kafka-{i}" for i in range(1, len(self.settings.stack.ports.kafka) + 1)]

    def _start(self, service: ServiceDef) -> None:
        if service.prepare and not process.running_pid(self.layout, service.name):
            service.prepare()
        pid, now = process.start(service.spec, self.layout)
        # what the start created (its data folder, log, pid file, configuration) is the owner's alone
        self.layout.restrict()
        self.log(f"{'started' if now else 'running'} {service.name} (pid {pid})")

    def _wait(self, service: ServiceDef) -> None:
        deadline = time.monotonic() + service.start_timeout
        result = Health(False, "not probed")
        while time.monotonic() < deadline:
            if process.running_pid(self.layout, service.name) is None:
                raise StackError(f"{service.name} exited during start-up:\n{self._tail(service.name)}")
            result = service.probe()
            if result.ok:
                return
            time.sleep(0.5)
        raise StackError(
            f"{service.name} not healthy after {service.start_timeout:.0f} s ({result.detail}):\n"
            f"{self._tail(service.name)}"
        )

    def _tail(self, name: str, lines: int = 30) -> str:
        path = self.layout.log_of(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _init_airflow(self, secrets: Mapping[str, str]) -> None:
        with self.layout.log_of("airflow-init").open("ab") as log_file:
            try:
                init_airflow(self.settings, secrets, venv_bin("airflow"), log_file, self.log)
            except AirflowInitError as exc:
                raise StackError(str(exc)) from exc

    # -- down, status, logs, clean ---------------------------------------------------------------------
    def down(self, only: list[str] | None = None) -> list[str]:
        services = self.services()
        stopped = []
        for name in reversed(list(services)):
            if only and name not in only:
                continue
            spec = services[name].spec
            if process.stop(self.layout, name, spec.stop_signal, spec.stop_timeout):
                self.log(f"stopped {name}")
                stopped.append(name)
        return stopped

    def status(self) -> list[ServiceStatus]:
        services = self.services()

        def check(service: ServiceDef) -> ServiceStatus:
            name = service.name
            pid = process.running_pid(self.layout, name)
            # a pid file left behind by a process that is gone: it died rather than was stopped
            died = pid is None and self.layout.pid_of(name).exists()
            if pid:
                result = service.probe()
                supervisor = read_state(self.layout.supervisor_state_of(name))
                if not result.ok and supervisor is not None and supervisor.crashes:
                    result = Health(False, supervisor.describe())
            elif died:
                result = Health(False, f"died: {last_error_line(self._tail(name, 60).splitlines())}")
            else:
                result = Health(False, "not running")
            memory = process.group_memory_mib(pid) if pid else 0.0
            return ServiceStatus(name, pid, result, service.url, memory, service.optional, died)

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(check, services.values()))

    def clean(self) -> None:
        """Stop everything and wipe service data; downloaded binaries and jars are kept."""
        self.down()
        for folder in (self.layout.data, self.layout.logs, self.layout.run):
            shutil.rmtree(folder, ignore_errors=True)
        self.log(f"wiped {self.layout.data}")


def format_urls(settings: Settings) -> str:
    """Where people look, and where their logins are."""
    s, p = settings, settings.stack.ports
    admin = settings.airflow.admin_user
    rows = [
        (
            "Airflow UI + REST API",
            s.airflow_url,
            f"user {admin}, password AIRFLOW_ADMIN_PASSWORD in env/airflow.env",
        ),
        ("Flower (Celery)", s.flower_url, "user flower, password FLOWER_PASSWORD in env/airflow.env"),
        (
            "MLflow UI",
            s.mlflow_tracking_uri,
            "MLFLOW_ADMIN_USER / MLFLOW_ADMIN_PASSWORD in env/mlflow.env",
        ),
        (
            "MinIO console",
            f"http://{s.host_of('minio')}:{p.minio_console}",
            "MINIO_ROOT_USER / MINIO_ROOT_PASSWORD in env/minio.env",
        ),
        ("Spark UI (scorer)", f"http://{s.stack.host}:{p.spark_ui}", "while the scorer runs"),
        (
            "Spark master UI (cluster)",
            f"http://{s.stack.host}:{p.spark_master_ui}",
            f"no login; the scorer's cluster when spark.master is empty ({s.native_spark_master_url})",
        ),
        ("Kafka bootstrap", s.kafka_bootstrap_servers, "plaintext on loopback"),
        (
            "Prometheus (targets, alerts)",
            f"http://{s.stack.host}:{p.prometheus}",
            "no login (loopback); alert rules in configs/prometheus/rules.yml",
        ),
        (
            "Alertmanager",
            f"http://{s.stack.host}:{p.alertmanager}",
            "no login (loopback); webhook ALERT_WEBHOOK_URL in env/alertmanager.env",
        ),
        ("PostgreSQL", f"{s.host_of('postgres')}:{p.postgres}", "roles and passwords in env/postgres.env"),
        (
            "Analyst console",
            f"http://{s.stack.host}:{p.console}",
            f"users analyst / viewer, passwords CONSOLE_ANALYST_PASSWORD / CONSOLE_VIEWER_PASSWORD in"
            f" env/console.env (hashed into {s.console.users_file})",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    url_width = max(len(r[1]) for r in rows)
    return "\n".join(f"{name:<{width}}  {url:<{url_width}}  {login}" for name, url, login in rows)


def format_status(rows: list[ServiceStatus]) -> str:
    width = max(len(r.name) for r in rows)
    lines = [f"{'SERVICE':<{width}}  {'PID':>7}  {'HEALTH':<9}  {'MEM MiB':>7}  URL / DETAIL"]
    for r in rows:
        state = (
            "healthy"
            if r.health.ok
            else "off"
            if r.acceptable
            else "FAILED"
            if r.died
            else "DOWN"
            if r.pid is None
            else "unhealthy"
        )
        detail = r.url if r.health.ok else f"{r.url}  [{r.health.detail}]"
        lines.append(f"{r.name:<{width}}  {r.pid or '-':>7}  {state:<9}  {r.memory_mib:>7.0f}  {detail}")
    total = sum(r.memory_mib for r in rows)
    lines.append(f"{'total':<{width}}  {'':>7}  {'':<9}  {total:>7.0f}  (PSS: shared pages counted once)")
    return "\n".join(lines)
