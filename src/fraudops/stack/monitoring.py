"""The native stack's monitoring services: Prometheus, Alertmanager and the Postgres and Redis exporters,
all from Debian's packages, in the foreground under the process manager, bound to ``stack.host``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from fraudops.config.settings import Settings
from fraudops.connections import MONITOR_DB_PASSWORD
from fraudops.monitoring.prometheus import ConfigFiles, ScrapeJob, scrape_jobs, write_configs
from fraudops.private_files import write_private
from fraudops.stack import health
from fraudops.stack.airflow_env import FLOWER_USER
from fraudops.stack.layout import StackLayout
from fraudops.stack.process import ProcessSpec
from fraudops.stack.service_secrets import redis_password_file, secrets_dir

# service -> (Debian package, its binary, the stack.versions key)
PACKAGES = {
    "prometheus": ("prometheus", "prometheus", "prometheus"),
    "alertmanager": ("prometheus-alertmanager", "prometheus-alertmanager", "alertmanager"),
    "postgres-exporter": (
        "prometheus-postgres-exporter",
        "prometheus-postgres-exporter",
        "postgres_exporter",
    ),
    "redis-exporter": ("prometheus-redis-exporter", "prometheus-redis-exporter", "redis_exporter"),
}
# Airflow's StatsD names -> Prometheus names and labels
STATSD_MAPPING = "configs/prometheus/statsd-mapping.yml"
_VERSION = re.compile(r"(?:version |Exporter v?)(\d+\.\d+\.\d+)")


class MonitoringInstallError(RuntimeError):
    pass


def installed_version(binary: str) -> str | None:
    """The upstream version a Prometheus-family binary reports (``--version``), e.g. 2.42.0."""
    path = shutil.which(binary)
    if path is None:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    match = _VERSION.search(out.stdout + out.stderr)
    return match.group(1) if match else None


def check_installed(settings: Settings) -> None:
    """Every monitoring binary is installed at its pinned version (``stack.versions``)."""
    problems = []
    for package, binary, key in PACKAGES.values():
        pinned = getattr(settings.stack.versions, key)
        found = installed_version(binary)
        if found != pinned:
            problems.append(f"{package} {found or 'missing'} (pinned {pinned})")
    if problems:
        raise MonitoringInstallError(
            "monitoring packages not at their pinned versions: "
            + ", ".join(problems)
            + "; run `make bootstrap` (Debian bookworm's packages)"
        )


def config_files(layout: StackLayout) -> ConfigFiles:
    return ConfigFiles(layout.run / "monitoring")


def listed_jobs(settings: Settings, layout: StackLayout) -> list[ScrapeJob]:
    """The scrape jobs of the native stack's Prometheus."""
    return scrape_jobs(settings, config_files(layout), FLOWER_USER)


def _postgres_password_file(layout: StackLayout) -> Path:
    return secrets_dir(layout) / "postgres-exporter.password"


def _redis_password_file(layout: StackLayout) -> Path:
    return secrets_dir(layout) / "redis-exporter.json"


def _redis_address(settings: Settings) -> str:
    return f"redis://{settings.host_of('redis')}:{settings.stack.ports.redis}"


def write_secret_files(
    name: str, settings: Settings, secrets: Mapping[str, str], layout: StackLayout
) -> None:
    """The password file the exporter ``name`` reads (mode 600; none for the others). Only the one
    service's secret is read: a container holds its own alone."""
    if name == "postgres-exporter":
        write_private(_postgres_password_file(layout), secrets[MONITOR_DB_PASSWORD] + "\n")
    elif name == "redis-exporter":
        text = redis_password_file(_redis_address(settings), secrets["REDIS_PASSWORD"])
        write_private(_redis_password_file(layout), text)


def _service_builders(
    settings: Settings, secrets: Mapping[str, str], layout: StackLayout
) -> dict[str, Callable[[], tuple[ProcessSpec, health.Probe, str]]]:
    """Each monitoring service's (process, health probe, URL), built on demand: a container runs one of
    them and holds only that one's secrets."""
    host, ports = settings.stack.host, settings.stack.ports
    files = config_files(layout)
    # where the servers are reached; their listeners bind stack.host (0.0.0.0 in compose)
    prometheus_url = f"http://{settings.host_of('prometheus')}:{ports.prometheus}"
    alertmanager_url = f"http://{settings.host_of('alertmanager')}:{ports.alertmanager}"

    def prometheus() -> tuple[ProcessSpec, health.Probe, str]:
        return (
            ProcessSpec(
                "prometheus",
                [
                    PACKAGES["prometheus"][1],
                    f"--config.file={files.prometheus}",
                    f"--storage.tsdb.path={layout.data_of('prometheus')}",
                    f"--storage.tsdb.retention.time={settings.monitoring.retention}",
                    f"--web.listen-address={host}:{ports.prometheus}",
                    f"--web.external-url={prometheus_url}",
                ],
            ),
            health.guarded(lambda: health.http(f"{prometheus_url}/-/ready")),
            f"{prometheus_url} (targets: {prometheus_url}/targets)",
        )

    def alertmanager() -> tuple[ProcessSpec, health.Probe, str]:
        return (
            ProcessSpec(
                "alertmanager",
                [
                    PACKAGES["alertmanager"][1],
                    f"--config.file={files.alertmanager}",
                    f"--storage.path={layout.data_of('alertmanager')}",
                    f"--web.listen-address={host}:{ports.alertmanager}",
                    f"--web.external-url={alertmanager_url}",
                    # no gossip cluster: its default listener takes *:9094, a Kafka broker's port
                    "--cluster.listen-address=",
                ],
            ),
            health.guarded(lambda: health.http(f"{alertmanager_url}/-/ready")),
            alertmanager_url,
        )

    def postgres_exporter() -> tuple[ProcessSpec, health.Probe, str]:
        url = f"http://{settings.host_of('postgres_exporter')}:{ports.postgres_exporter}/metrics"
        return (
            ProcessSpec(
                "postgres-exporter",
                [PACKAGES["postgres-exporter"][1], f"--web.listen-address={host}:{ports.postgres_exporter}"],
                # the password from a file, never on the command line or in the environment
                env={
                    # Debian's exporter (lib/pq) asks for TLS by default; the stack's Postgres has none
                    "DATA_SOURCE_URI": f"{settings.host_of('postgres')}:{ports.postgres}/postgres"
                    "?sslmode=disable",
                    "DATA_SOURCE_USER": settings.postgres.monitor_role,
                    "DATA_SOURCE_PASS_FILE": str(_postgres_password_file(layout)),
                },
            ),
            health.guarded(lambda: health.http(url)),
            url,
        )

    def redis_exporter() -> tuple[ProcessSpec, health.Probe, str]:
        url = f"http://{settings.host_of('redis_exporter')}:{ports.redis_exporter}/metrics"
        return (
            ProcessSpec(
                "redis-exporter",
                [
                    PACKAGES["redis-exporter"][1],
                    f"-web.listen-address={host}:{ports.redis_exporter}",
                    f"-redis.addr={_redis_address(settings)}",
                    # JSON of address -> password; neither the command line nor the environment holds it
                    f"-redis.password-file={_redis_password_file(layout)}",
                ],
            ),
            health.guarded(lambda: health.http(url)),
            url,
        )

    def statsd_exporter() -> tuple[ProcessSpec, health.Probe, str]:
        url = f"http://{settings.host_of('statsd_exporter')}:{ports.statsd_exporter}/metrics"
        return (
            ProcessSpec(
                "statsd-exporter",
                [
                    str(layout.bin / "statsd_exporter"),
                    f"--web.listen-address={host}:{ports.statsd_exporter}",
                    f"--statsd.listen-udp={host}:{ports.statsd}",
                    # StatsD over TCP is off: Airflow sends UDP
                    "--statsd.listen-tcp=",
                    f"--statsd.mapping-config={settings.path(STATSD_MAPPING)}",
                ],
            ),
            health.guarded(lambda: health.http(url)),
            f"{url} (Airflow's StatsD on udp {settings.host_of('statsd')}:{ports.statsd})",
        )

    def platform_exporter() -> tuple[ProcessSpec, health.Probe, str]:
        url = f"http://{settings.host_of('platform_exporter')}:{ports.platform_exporter}/metrics"
        return (
            ProcessSpec(
                "platform-exporter",
                [str(Path(sys.executable).parent / "fraudops"), "monitor", "exporter"],
                cwd=settings.project_root,
            ),
            health.guarded(lambda: health.http(url)),
            f"{url} (champion, last retraining, drift)",
        )

    return {
        "prometheus": prometheus,
        "alertmanager": alertmanager,
        "postgres-exporter": postgres_exporter,
        "redis-exporter": redis_exporter,
        "statsd-exporter": statsd_exporter,
        "platform-exporter": platform_exporter,
    }


# the monitoring services, in start order (docker-compose.yaml has one container of each name)
MONITORING_NAMES: tuple[str, ...] = (
    "prometheus",
    "alertmanager",
    "postgres-exporter",
    "redis-exporter",
    "statsd-exporter",
    "platform-exporter",
)


def monitoring_services(
    settings: Settings, secrets: Mapping[str, str], layout: StackLayout
) -> list[tuple[ProcessSpec, health.Probe, str]]:
    """(process, health probe, URL) of each monitoring service, in start order."""
    builders = _service_builders(settings, secrets, layout)
    return [builders[name]() for name in MONITORING_NAMES]


def process_of(name: str, settings: Settings, secrets: Mapping[str, str], layout: StackLayout) -> ProcessSpec:
    """The native stack's process of the monitoring service ``name`` (``fraudops monitor exec``)."""
    builders = _service_builders(settings, secrets, layout)
    if name not in builders:
        raise KeyError(f"no monitoring service {name!r}; one of {', '.join(MONITORING_NAMES)}")
    return builders[name]()[0]


def prepare(settings: Settings, secrets: Mapping[str, str], layout: StackLayout) -> None:
    """Write the generated configuration and create the data folders (before Prometheus or Alertmanager
    start; both re-read nothing else)."""
    write_configs(settings, secrets, config_files(layout), FLOWER_USER)
    for name in ("prometheus", "alertmanager"):
        layout.data_of(name).mkdir(parents=True, exist_ok=True)
