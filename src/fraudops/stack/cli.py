"""`fraudops stack ...` and `fraudops kafka ...` commands."""

from __future__ import annotations

import shlex
import subprocess
import sys

import click

from fraudops.config.settings import load_settings


@click.group("stack")
def stack_group() -> None:
    """The native stack: the services of docker-compose.yaml as local processes."""


@stack_group.command()
def up() -> None:
    """Install what is missing, start every service, wait until healthy."""
    from fraudops.stack.manager import Stack, StackError, format_status

    try:
        rows = Stack(load_settings()).up()
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(format_status(rows))


@stack_group.command()
@click.argument("services", nargs=-1)
def down(services: tuple[str, ...]) -> None:
    """Stop the processes `up` started (all, or the SERVICES named). Data is kept."""
    from fraudops.stack.manager import Stack

    Stack(load_settings()).down(list(services) or None)


@stack_group.command()
def status() -> None:
    """Print every service with its pid, health and URL; exit 1 if any is unhealthy."""
    from fraudops.stack.manager import Stack, format_status

    stack = Stack(load_settings())
    rows = stack.status()
    click.echo(format_status(rows))
    if not stack.was_set_up():
        click.echo("\nthe stack was never brought up here: `make up` (or `make demo`) installs and starts it")
    if not all(r.acceptable for r in rows):
        sys.exit(1)


@stack_group.command()
def urls() -> None:
    """Print the UIs and endpoints with where their logins are."""
    from fraudops.stack.manager import format_urls

    click.echo(format_urls(load_settings()))


@stack_group.command()
@click.argument("services", nargs=-1, required=True)
def start(services: tuple[str, ...]) -> None:
    """(Re)start SERVICES of a stack that was brought up before."""
    from fraudops.stack.manager import Stack, StackError

    try:
        Stack(load_settings()).start(list(services))
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc


@stack_group.command()
@click.argument("service", required=False)
@click.option("-n", "--lines", default=20, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines")
def logs(service: str | None, lines: int, follow: bool) -> None:
    """Show the last lines of every service log (or of SERVICE)."""
    from fraudops.stack.layout import StackLayout

    layout = StackLayout(load_settings().data_dir)
    files = [layout.log_of(service)] if service else sorted(layout.logs.glob("*.log"))
    files = [str(f) for f in files if f.exists()]
    if not files:
        raise click.ClickException(f"no logs under {layout.logs}")
    subprocess.run(["tail", f"-n{lines}", *(["-F"] if follow else []), *files], check=False)


@stack_group.command()
@click.confirmation_option(prompt="Stop the stack and delete all its data?")
def clean() -> None:
    """Stop the stack and wipe its data folder (downloads are kept)."""
    from fraudops.stack.manager import Stack

    Stack(load_settings()).clean()


@stack_group.command()
def secrets() -> None:
    """Generate missing secrets into env/*.env from env/*.env.example, and each component's own file
    env/components/<component>.env (what its container gets in docker-compose.yaml)."""
    from fraudops.secrets import COMPONENTS_DIR, ensure_secrets, write_component_secrets

    settings = load_settings()
    report = ensure_secrets(settings.env_dir)
    for name, keys in report.items():
        click.echo(f"env/{name}: generated {', '.join(keys)}")
    if not report:
        click.echo("all secrets present")
    written = write_component_secrets(settings.env_dir)
    click.echo(f"env/{COMPONENTS_DIR}/: {len(written)} component files")
    from fraudops.console.users import ensure_console_users

    for name in ensure_console_users(settings):
        click.echo(f"{settings.console.users_file}: created console user {name}")


@stack_group.command()
def install() -> None:
    """Fetch the Kafka and Spark connector jars and build MinIO (skipped when already in place)."""
    from fraudops.stack.install import ensure_all
    from fraudops.stack.layout import StackLayout

    settings = load_settings()
    ensure_all(settings, StackLayout(settings.data_dir), click.echo)


@stack_group.command("init-db")
def init_db() -> None:
    """Create the component roles and databases (idempotent)."""
    from fraudops.secrets import load_secrets
    from fraudops.stack.postgres import init_databases

    settings = load_settings()
    click.echo("databases ready: " + ", ".join(init_databases(settings, load_secrets(settings.env_dir))))


@stack_group.command("init-buckets")
def init_buckets() -> None:
    """Create the MinIO buckets, and each component's user with its policy (idempotent)."""
    from fraudops.secrets import load_secrets
    from fraudops.storage import ensure_buckets, ensure_users

    settings = load_settings()
    secrets = load_secrets(settings.env_dir)
    for bucket, state in ensure_buckets(settings, secrets).items():
        click.echo(f"bucket {bucket}: {state}")
    click.echo("users ready: " + ", ".join(ensure_users(settings, secrets)))


@stack_group.command("init-mlflow")
def init_mlflow() -> None:
    """Create or update MLflow's pipeline and reader accounts, as the admin (idempotent; MLflow running)."""
    from fraudops.secrets import load_secrets
    from fraudops.stack.mlflow_auth import init_accounts

    settings = load_settings()
    for account, state in init_accounts(settings, load_secrets(settings.env_dir)).items():
        click.echo(f"mlflow account {account}: {state}")


@stack_group.command("exec")
@click.argument("name")
def exec_service(name: str) -> None:
    """Run the service NAME as the native stack does: its preparation (generated configuration and secret
    files), then replace this process with the service's own (docker-compose.yaml's mlflow container)."""
    import os

    from fraudops.secrets import mounted_secrets
    from fraudops.stack.layout import StackLayout
    from fraudops.stack.services import CONTAINER_SERVICES

    if name not in CONTAINER_SERVICES:
        raise click.BadParameter(f"one of {', '.join(CONTAINER_SERVICES)}", param_hint="NAME")
    settings = load_settings()
    # the container mounts only its own secrets
    service = CONTAINER_SERVICES[name](
        settings, mounted_secrets(settings.env_dir), StackLayout(settings.data_dir)
    )
    if service.prepare is not None:
        service.prepare()
    spec = service.spec
    if spec.cwd is not None:
        os.chdir(spec.cwd)
    os.execvpe(spec.argv[0], spec.argv, {**os.environ, **spec.env})


@stack_group.command("airflow-env")
def airflow_env() -> None:
    """Write Airflow's secret options to its airflow.cfg (mode 600) and print the rest of its
    configuration as shell exports, AIRFLOW_CONFIG included (compose entrypoint, a shell on the host)."""
    from fraudops.secrets import load_secrets
    from fraudops.stack.airflow_env import airflow_process_environment, write_airflow_config

    settings = load_settings()
    secrets = load_secrets(settings.env_dir)
    write_airflow_config(settings, secrets)
    for key, value in airflow_process_environment(settings, secrets).items():
        click.echo(f"export {key}={shlex.quote(value)}")


@stack_group.command("airflow-init")
def airflow_init() -> None:
    """Migrate Airflow's metadata database and create or update the admin account (compose airflow-init)."""
    import shutil

    from fraudops.secrets import load_secrets
    from fraudops.stack.airflow_init import AirflowInitError, init_airflow

    settings = load_settings()
    airflow_bin = shutil.which("airflow")
    if airflow_bin is None:
        raise click.ClickException("the `airflow` command is not on PATH")
    try:
        init_airflow(settings, load_secrets(settings.env_dir), airflow_bin, log=click.echo)
    except AirflowInitError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("Airflow is initialised")


@click.group("kafka")
def kafka_group() -> None:
    """Kafka topics."""


@kafka_group.command("create-topics")
@click.option("--bootstrap-servers", default=None, help="defaults to the stack's brokers")
def create_topics_cmd(bootstrap_servers: str | None) -> None:
    """Create the topics of kafka/topics.yaml that are missing (idempotent)."""
    from fraudops.topics import create_topics, load_topic_specs

    settings = load_settings()
    specs = load_topic_specs(settings.path(settings.kafka.topics_file))
    for topic, state in create_topics(bootstrap_servers or settings.kafka_bootstrap_servers, specs).items():
        click.echo(f"topic {topic}: {state}")
