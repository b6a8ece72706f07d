"""The Prometheus and Alertmanager configuration, generated from the settings: scrape targets on the same
ports the services listen on, the committed alert rules with their thresholds filled in, and one route to
the alert webhook. Pure functions of the settings; the native stack writes their output under
``stack.data_dir`` (:func:`write_configs`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fraudops.config.settings import Settings
from fraudops.private_files import write_private

# the scrape jobs whose absence is not an outage: they run only while someone runs them
OPTIONAL_JOBS = ("scorer", "producer")
# a rule template names a threshold as <<name>>: monitoring.alerts.<name>
_PLACEHOLDER = re.compile(r"<<([a-z0-9_]+)>>")
WEBHOOK_PATH = "/alerts"


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: list[str]
    metrics_path: str = "/metrics"
    # basic auth: (user, file holding the password)
    basic_auth: tuple[str, str] | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def optional(self) -> bool:
        return self.name in OPTIONAL_JOBS

    def as_config(self) -> dict[str, Any]:
        job: dict[str, Any] = {"job_name": self.name, "metrics_path": self.metrics_path}
        if self.basic_auth:
            job["basic_auth"] = {"username": self.basic_auth[0], "password_file": self.basic_auth[1]}
        job["static_configs"] = [
            {"targets": self.targets, "labels": self.labels} if self.labels else {"targets": self.targets}
        ]
        return job


@dataclass(frozen=True)
class ConfigFiles:
    """Where the generated configuration lives (natively under ``<data_dir>/run/``)."""

    folder: Path

    @property
    def prometheus(self) -> Path:
        return self.folder / "prometheus.yml"

    @property
    def rules(self) -> Path:
        return self.folder / "rules.yml"

    @property
    def alertmanager(self) -> Path:
        return self.folder / "alertmanager.yml"

    @property
    def webhook_url(self) -> Path:
        return self.folder / "alert-webhook-url"

    @property
    def flower_password(self) -> Path:
        return self.folder / "flower-password"

    @property
    def mlflow_password(self) -> Path:
        return self.folder / "mlflow-password"


def _addr(settings: Settings, port: int, service: str) -> str:
    return f"{settings.host_of(service)}:{port}"


# MLflow's read-only account (MLFLOW_READER_USER in env/mlflow.env): what Prometheus signs in as
MLFLOW_READER = "fraudops-reader"


def scrape_jobs(
    settings: Settings, files: ConfigFiles, flower_user: str, mlflow_user: str = MLFLOW_READER
) -> list[ScrapeJob]:
    """Every target Prometheus scrapes: the ports of ``stack.ports`` on the hosts of ``stack.hosts`` (all
    ``stack.host`` natively, the containers' names in compose)."""
    p = settings.stack.ports
    return [
        ScrapeJob("prometheus", [_addr(settings, p.prometheus, "prometheus")]),
        ScrapeJob("alertmanager", [_addr(settings, p.alertmanager, "alertmanager")]),
        ScrapeJob("postgres", [_addr(settings, p.postgres_exporter, "postgres_exporter")]),
        ScrapeJob("redis", [_addr(settings, p.redis_exporter, "redis_exporter")]),
        # MinIO's own endpoint, public on loopback (MINIO_PROMETHEUS_AUTH_TYPE=public)
        ScrapeJob("minio", [_addr(settings, p.minio_api, "minio")], "/minio/v2/metrics/cluster"),
        ScrapeJob(
            "flower",
            [_addr(settings, p.flower, "flower")],
            basic_auth=(flower_user, str(files.flower_password)),
        ),
        # MLflow's basic auth lets any signed-in account read /metrics (fraudops.mlflow_auth)
        ScrapeJob(
            "mlflow",
            [_addr(settings, p.mlflow, "mlflow")],
            basic_auth=(mlflow_user, str(files.mlflow_password)),
        ),
        ScrapeJob(
            "kafka",
            [f"{host}:{port}" for host, port in zip(settings.kafka_jmx_hosts, p.kafka_jmx, strict=True)],
        ),
        # Airflow's StatsD metrics, through statsd_exporter
        ScrapeJob("airflow", [_addr(settings, p.statsd_exporter, "statsd_exporter")]),
        # champion version, last retraining run, drift (fraudops.monitoring.platform)
        ScrapeJob("platform", [_addr(settings, p.platform_exporter, "platform_exporter")]),
        ScrapeJob("scorer", [_addr(settings, p.scorer_metrics, "scorer")]),
        ScrapeJob("producer", [_addr(settings, p.producer_metrics, "producer")]),
    ]


def prometheus_config(
    settings: Settings, files: ConfigFiles, flower_user: str, mlflow_user: str = MLFLOW_READER
) -> dict[str, Any]:
    m = settings.monitoring
    alertmanager = _addr(settings, settings.stack.ports.alertmanager, "alertmanager")
    return {
        "global": {"scrape_interval": m.scrape_interval, "evaluation_interval": m.evaluation_interval},
        "rule_files": [str(files.rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [job.as_config() for job in scrape_jobs(settings, files, flower_user, mlflow_user)],
    }


def render_rules(template: str, settings: Settings) -> str:
    """The committed rules with every ``<<name>>`` replaced by ``monitoring.alerts.<name>``."""
    thresholds = settings.monitoring.alerts.model_dump()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in thresholds:
            raise KeyError(f"the alert rules name <<{name}>>, which monitoring.alerts does not define")
        value = thresholds[name]
        # 5.0 reads as 5 in a rule and its summary
        return f"{value:g}" if isinstance(value, float) else str(value)

    return _PLACEHOLDER.sub(fill, template)


def default_webhook_url(settings: Settings) -> str:
    """Where alerts go when ``ALERT_WEBHOOK_URL`` is empty: a receiver on this machine (none runs by
    default; the end-to-end test listens there)."""
    return f"http://{settings.stack.host}:{settings.stack.ports.alert_webhook}{WEBHOOK_PATH}"


def webhook_url(settings: Settings, secrets: dict[str, str] | Any) -> str:
    return secrets.get("ALERT_WEBHOOK_URL") or default_webhook_url(settings)


def alertmanager_config(settings: Settings, files: ConfigFiles) -> dict[str, Any]:
    """One route to a Slack-compatible webhook; its URL is read from a file, so it never shows in the
    configuration or on a command line."""
    m = settings.monitoring
    return {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname", "job"],
            "group_wait": m.group_wait,
            "group_interval": m.group_interval,
            "repeat_interval": m.repeat_interval,
        },
        "receivers": [
            {
                "name": "webhook",
                "slack_configs": [
                    {
                        "api_url_file": str(files.webhook_url),
                        "send_resolved": True,
                        "title": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}",
                        "text": ("{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}"),
                    }
                ],
            }
        ],
    }


def write_configs(settings: Settings, secrets: Any, files: ConfigFiles, flower_user: str) -> None:
    """Write every generated file, each atomically, readable by its owner only (three hold secrets)."""
    files.folder.mkdir(parents=True, exist_ok=True)
    mlflow_user = secrets.get("MLFLOW_READER_USER") or MLFLOW_READER
    template = settings.path(settings.monitoring.rules_file).read_text()
    write_private(files.rules, render_rules(template, settings))
    for path, config in (
        (files.prometheus, prometheus_config(settings, files, flower_user, mlflow_user)),
        (files.alertmanager, alertmanager_config(settings, files)),
    ):
        write_private(path, yaml.safe_dump(config, sort_keys=False))
    for path, value in (
        (files.webhook_url, webhook_url(settings, secrets)),
        (files.flower_password, secrets.get("FLOWER_PASSWORD", "")),
        (files.mlflow_password, secrets.get("MLFLOW_READER_PASSWORD", "")),
    ):
        write_private(path, value)
