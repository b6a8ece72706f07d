"""Prometheus's and Alertmanager's configuration is generated from the settings: every scrape target is
a port of stack.ports, the webhook URL stays out of the configuration, and the native services never
take a port another service holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fraudops.config.settings import load_settings
from fraudops.monitoring.prometheus import (
    ConfigFiles,
    alertmanager_config,
    default_webhook_url,
    prometheus_config,
    webhook_url,
    write_configs,
)
from fraudops.stack.layout import StackLayout
from fraudops.stack.monitoring import listed_jobs, monitoring_services

SECRETS = {
    "ALERT_WEBHOOK_URL": "",
    "FLOWER_PASSWORD": "flower-secret",
    "REDIS_PASSWORD": "redis-secret",
    "POSTGRES_PASSWORD": "pg-secret",
    "MONITOR_DB_PASSWORD": "monitor-secret",
}


def _ports_in_use(settings) -> set[int]:
    ports = settings.stack.ports.model_dump()
    flat: list[int] = []
    for value in ports.values():
        flat.extend(value if isinstance(value, list) else [value])
    return set(flat)


def test_every_target_is_a_configured_port(tmp_path: Path) -> None:
    settings = load_settings()
    config = prometheus_config(settings, ConfigFiles(tmp_path), "flower")
    ports = _ports_in_use(settings)
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert targets and all(int(t.rsplit(":", 1)[1]) in ports for t in targets)
    assert {job["job_name"] for job in config["scrape_configs"]} >= {
        "prometheus",
        "alertmanager",
        "postgres",
        "redis",
        "minio",
        "flower",
        "scorer",
        "producer",
    }
    alertmanager = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager == [f"{settings.stack.host}:{settings.stack.ports.alertmanager}"]


def test_ports_are_distinct_and_alertmanager_leaves_kafka_alone() -> None:
    settings = load_settings()
    ports = settings.stack.ports.model_dump()
    flat = [p for v in ports.values() for p in (v if isinstance(v, list) else [v])]
    assert len(flat) == len(set(flat))
    layout = StackLayout(Path("/nonexistent"))
    argv = {spec.name: spec.argv for spec, _, _ in monitoring_services(settings, SECRETS, layout)}
    # Alertmanager's gossip listener would take *:9094 (a broker) unless turned off
    assert "--cluster.listen-address=" in argv["alertmanager"]
    # the platform exporter is ours: it reads its port from the settings, not from a flag
    assert set(argv) - {"platform-exporter"} == {
        "prometheus",
        "alertmanager",
        "postgres-exporter",
        "redis-exporter",
        "statsd-exporter",
    }
    for name, args in argv.items():
        if name == "platform-exporter":
            continue
        listen = [a for a in args if "web.listen-address=" in a]
        assert listen and listen[0].endswith(f"{settings.stack.host}:{getattr_port(settings, name)}"), name


def getattr_port(settings, service: str) -> int:
    return getattr(settings.stack.ports, service.replace("-", "_"))


def test_no_secret_on_a_command_line() -> None:
    settings = load_settings()
    for spec, _, _ in monitoring_services(settings, SECRETS, StackLayout(Path("/x"))):
        assert not any(s in " ".join(spec.argv) for s in SECRETS.values() if s), spec.name


def test_the_postgres_exporter_gets_a_libpq_address_without_tls_and_its_password_from_a_file(
    tmp_path: Path,
) -> None:
    from urllib.parse import parse_qs, urlsplit

    from fraudops.stack.monitoring import write_secret_files

    settings = load_settings()
    layout = StackLayout(tmp_path)
    services = monitoring_services(settings, SECRETS, layout)
    env = {spec.name: spec.env for spec, _, _ in services}["postgres-exporter"]
    # the exporter builds postgresql://USER:PASS@URI from these
    url = urlsplit("postgresql://" + env["DATA_SOURCE_URI"])
    assert url.port == settings.stack.ports.postgres and url.path == "/postgres"
    assert parse_qs(url.query) == {"sslmode": ["disable"]}
    # the exporter's own pg_monitor role, never the superuser; no password in the environment
    assert env["DATA_SOURCE_USER"] == settings.postgres.monitor_role
    assert not any(value in env.values() for value in SECRETS.values() if value)
    write_secret_files("postgres-exporter", settings, SECRETS, layout)
    password_file = Path(env["DATA_SOURCE_PASS_FILE"])
    assert password_file.read_text().strip() == "monitor-secret"
    assert password_file.stat().st_mode & 0o777 == 0o600


def test_the_redis_exporter_reads_its_password_from_a_file_keyed_by_its_address(tmp_path: Path) -> None:
    import json

    from fraudops.stack.monitoring import write_secret_files

    settings = load_settings()
    layout = StackLayout(tmp_path)
    spec = {spec.name: spec for spec, _, _ in monitoring_services(settings, SECRETS, layout)}[
        "redis-exporter"
    ]
    flags = dict(a.lstrip("-").split("=", 1) for a in spec.argv[1:])
    assert not any(value in spec.env.values() for value in SECRETS.values() if value)
    write_secret_files("redis-exporter", settings, SECRETS, layout)
    # the exporter looks the password up by the very address it scrapes
    assert json.loads(Path(flags["redis.password-file"]).read_text()) == {
        flags["redis.addr"]: SECRETS["REDIS_PASSWORD"]
    }


def test_the_webhook_url_is_read_from_a_private_file(tmp_path: Path) -> None:
    settings = load_settings()
    files = ConfigFiles(tmp_path / "monitoring")
    secret_url = "https://hooks.example.invalid/services/T000/B000/XXXX"
    write_configs(settings, {**SECRETS, "ALERT_WEBHOOK_URL": secret_url}, files, "flower")
    assert secret_url not in files.alertmanager.read_text()
    assert files.webhook_url.read_text() == secret_url
    assert files.webhook_url.stat().st_mode & 0o077 == 0
    assert files.flower_password.stat().st_mode & 0o077 == 0
    receiver = yaml.safe_load(files.alertmanager.read_text())["receivers"][0]
    assert receiver["slack_configs"][0]["api_url_file"] == str(files.webhook_url)
    assert yaml.safe_load(files.prometheus.read_text())["rule_files"] == [str(files.rules)]
    assert "<<" not in files.rules.read_text()


def test_an_empty_webhook_url_means_the_local_receiver() -> None:
    settings = load_settings()
    assert webhook_url(settings, {"ALERT_WEBHOOK_URL": ""}) == default_webhook_url(settings)
    assert default_webhook_url(settings) == (
        f"http://{settings.stack.host}:{settings.stack.ports.alert_webhook}/alerts"
    )
    assert webhook_url(settings, {"ALERT_WEBHOOK_URL": "https://x.invalid/h"}) == "https://x.invalid/h"


def test_alertmanager_groups_with_the_configured_timings(tmp_path: Path) -> None:
    settings = load_settings(monitoring={"group_wait": "3s", "repeat_interval": "1h"})
    route = alertmanager_config(settings, ConfigFiles(tmp_path))["route"]
    assert (route["group_wait"], route["repeat_interval"]) == ("3s", "1h")


def test_listed_jobs_mark_only_the_scorer_and_producer_optional() -> None:
    settings = load_settings()
    jobs = listed_jobs(settings, StackLayout(Path("/x")))
    assert {j.name for j in jobs if j.optional} == {"scorer", "producer"}


def test_a_container_runs_the_native_process_of_its_name(tmp_path: Path) -> None:
    """`fraudops monitor exec NAME` (docker-compose.yaml) runs exactly the native stack's process of NAME,
    and builds only that one: a container holds only the secrets its own service reads."""
    from fraudops.stack.monitoring import MONITORING_NAMES, process_of, write_secret_files

    settings = load_settings()
    layout = StackLayout(Path("/x"))
    native = {spec.name: spec for spec, _, _ in monitoring_services(settings, SECRETS, layout)}
    assert tuple(native) == MONITORING_NAMES
    for name in MONITORING_NAMES:
        assert process_of(name, settings, SECRETS, layout) == native[name]
    # the Redis exporter's container has env/redis.env only: its process builds (and its password file is
    # written) from that one secret
    alone = process_of("redis-exporter", settings, {"REDIS_PASSWORD": "r"}, layout)
    assert alone.env == {}
    write_secret_files("redis-exporter", settings, {"REDIS_PASSWORD": "r"}, StackLayout(tmp_path))
    with pytest.raises(KeyError, match="no monitoring service 'grafana'"):
        process_of("grafana", settings, SECRETS, layout)


def test_monitor_exec_prepares_the_configuration_then_execs_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preparation of `make up` (generated prometheus.yml and alertmanager.yml, the webhook URL from
    env/alertmanager.env), then the process replaces the command (os.execvpe, recorded here instead)."""
    from click.testing import CliRunner

    from fraudops.cli import main
    from fraudops.stack.monitoring import config_files, process_of

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "configs").symlink_to(repo / "configs")
    (tmp_path / "env").mkdir()
    # the only env file the Alertmanager container mounts
    (tmp_path / "env" / "alertmanager.env").write_text("ALERT_WEBHOOK_URL=http://chat.example/hook\n")
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path))
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def record(file: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((file, argv, env))

    monkeypatch.setattr("os.execvpe", record)
    result = CliRunner().invoke(main, ["monitor", "exec", "alertmanager"])
    assert result.exit_code == 0, result.output
    settings = load_settings(tmp_path)
    layout = StackLayout(settings.data_dir)
    spec = process_of("alertmanager", settings, {}, layout)
    assert calls == [(spec.argv[0], spec.argv, calls[0][2])]
    files = config_files(layout)
    assert files.webhook_url.read_text() == "http://chat.example/hook"
    assert yaml.safe_load(files.alertmanager.read_text())["receivers"][0]["slack_configs"][0][
        "api_url_file"
    ] == str(files.webhook_url)
    assert "scrape_configs" in yaml.safe_load(files.prometheus.read_text())
    bad = CliRunner().invoke(main, ["monitor", "exec", "grafana"])
    assert bad.exit_code != 0 and "no monitoring service" in bad.output
