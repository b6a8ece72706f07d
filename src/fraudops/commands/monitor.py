"""`fraudops drift` (the daily drift check) and `fraudops monitor exporter` (the platform exporter)."""

from __future__ import annotations

import os

import click


@click.command("drift")
@click.option(
    "--trigger", is_flag=True, help="Trigger the retraining DAG through Airflow's API when drifted."
)
def drift_command(trigger: bool) -> None:
    """PSI of recent scored traffic against the champion's training reference (recorded in Postgres and
    MLflow); exits 3 when a feature or the score drifted."""
    import logging

    from fraudops.config.settings import load_settings
    from fraudops.drift import check_drift
    from fraudops.secrets import load_secrets

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = load_settings()
    secrets = load_secrets(settings.env_dir)

    def retrain(_report) -> None:  # type: ignore[no-untyped-def]
        from fraudops.airflow_api import AirflowApi

        run_id = AirflowApi(settings, secrets).trigger(settings.drift.retraining_dag_id, {"force": False})
        click.echo(f"triggered {settings.drift.retraining_dag_id} run {run_id}")

    report = check_drift(settings, secrets, trigger=retrain if trigger else None)
    click.echo(report.summary())
    for column, value in sorted(report.psi.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {column:<36} {value:8.4f}{'  DRIFT' if value >= report.threshold else ''}")
    if report.drifted:
        raise SystemExit(3)


@click.group("monitor")
def monitor_group() -> None:
    """Monitoring processes of the platform."""


@monitor_group.command("exporter")
def exporter_command() -> None:
    """Serve the platform exporter (champion version, last retraining, drift) on
    stack.ports.platform_exporter until stopped."""
    import signal
    import threading

    from prometheus_client import CollectorRegistry

    from fraudops.config.settings import load_settings
    from fraudops.monitoring.metrics import serve
    from fraudops.monitoring.platform import stack_collector
    from fraudops.secrets import load_secrets

    # a scrape asks MLflow: a slow or restarting server must cost seconds, not MLflow's default minutes of
    # retries (Prometheus gives a scrape scrape_interval)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    settings = load_settings()
    registry = CollectorRegistry()
    registry.register(stack_collector(settings, load_secrets(settings.env_dir)))
    serve(registry, settings.stack.host, settings.stack.ports.platform_exporter)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"platform exporter on http://{settings.stack.host}:{settings.stack.ports.platform_exporter}")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass


@monitor_group.command("exec")
@click.argument("name")
def exec_command(name: str) -> None:
    """Run the monitoring service NAME as the native stack does: write the generated configuration, then
    replace this process with the service's own (docker-compose.yaml's monitoring containers)."""
    from fraudops.config.settings import load_settings
    from fraudops.secrets import mounted_secrets
    from fraudops.stack import monitoring
    from fraudops.stack.layout import StackLayout

    settings = load_settings()
    # the container mounts only the env files this service reads
    secrets = mounted_secrets(settings.env_dir)
    layout = StackLayout(settings.data_dir)
    try:
        spec = monitoring.process_of(name, settings, secrets, layout)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="NAME") from None
    monitoring.prepare(settings, secrets, layout)
    monitoring.write_secret_files(name, settings, secrets, layout)
    if spec.cwd is not None:
        os.chdir(spec.cwd)
    os.execvpe(spec.argv[0], spec.argv, {**os.environ, **spec.env})
