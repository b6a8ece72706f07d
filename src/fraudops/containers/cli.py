"""`fraudops compose ...`: the platform in containers (docker-compose.yaml)."""

from __future__ import annotations

import sys

import click

from fraudops.config.settings import Settings, load_settings
from fraudops.containers.compose import Compose, ComposeError, state_dir
from fraudops.containers.engine import EngineError, engine_answers, ensure_engine, stop_engine
from fraudops.secrets import ensure_secrets, write_component_secrets


def _log(line: str) -> None:
    click.echo(f"    {line}")


def _ready_compose(settings: Settings) -> Compose:
    """A Docker engine that answers (started when none does), the secrets in place, and compose."""
    try:
        ensure_engine(state_dir(settings), log=_log)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from exc
    ensure_secrets(settings.env_dir)
    # each container mounts its own component's file of them
    write_component_secrets(settings.env_dir)
    # the console container reads env/ read-only: its people are created here, beside the secrets
    from fraudops.console.users import ensure_console_users

    ensure_console_users(settings)
    return Compose(settings, log=_log)


@click.group("compose")
def compose_group() -> None:
    """The services of the native stack as containers (docker-compose.yaml)."""


@compose_group.command()
def build() -> None:
    """Build every image (and the Debian base where no registry answers); starts a Docker engine if none
    answers."""
    _ready_compose(load_settings()).build()


@compose_group.command()
@click.option("--scoring/--no-scoring", default=False, help="Start the Spark scorer too (needs a champion).")
@click.option("--timeout", type=float, default=900, show_default=True, help="Seconds to wait for health.")
def up(scoring: bool, timeout: float) -> None:
    """Build what is missing, start the containers, wait until every one is healthy."""
    compose = _ready_compose(load_settings())
    try:
        compose.build()
        compose.up(profiles=["scoring"] if scoring else [])
        states = compose.wait_ready(timeout=timeout)
    except ComposeError as exc:
        raise click.ClickException(str(exc)) from exc
    for state in states:
        click.echo(f"  {state.service:<24} {state.describe()}")


@compose_group.command()
@click.option("--volumes", is_flag=True, help="Also delete the named volumes (all data).")
@click.option(
    "--stop-engine", "stop", is_flag=True, help="Stop the Docker engine if `fraudops compose` started it."
)
def down(volumes: bool, stop: bool) -> None:
    """Stop and remove the containers; the data volumes stay unless --volumes."""
    settings = load_settings()
    if engine_answers():
        Compose(settings, log=_log).down(volumes=volumes)
    if stop:
        stop_engine(state_dir(settings), log=_log)


@compose_group.command()
def status() -> None:
    """Every container of the project with its state; exit 1 unless all are ready."""
    states = Compose(load_settings(), log=_log).states()
    for state in states:
        click.echo(f"  {state.service:<24} {state.describe()}")
    if not states or not all(s.ready for s in states):
        sys.exit(1)
