"""`fraudops compose ...`: the platform in containers (docker-compose.yaml)."""

from __future__ import annotations

import sys

import click

from fraudops.settings import load_settings


def _compose():  # noqa: ANN202  (heavy imports stay inside the commands)
    from fraudops.containers.compose import Compose

    return Compose(load_settings(), log=lambda line: click.echo(f"    {line}"))


def _engine() -> None:
    from fraudops.containers.compose import state_dir
    from fraudops.containers.engine import EngineError, ensure_engine

    try:
        ensure_engine(state_dir(load_settings()), log=lambda line: click.echo(f"    {line}"))
    except EngineError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("compose")
def compose_group() -> None:
    """The services of the native stack as containers (docker-compose.yaml)."""


@compose_group.command()
def build() -> None:
    """Build every image (and the Debian base where no registry answers); starts a Docker engine if none
    answers."""
    from fraudops.secrets import ensure_secrets

    _engine()
    settings = load_settings()
    ensure_secrets(settings.env_dir)
    _compose().build()


@compose_group.command()
@click.option("--scoring/--no-scoring", default=False, help="Start the Spark scorer too (needs a champion).")
@click.option("--timeout", type=float, default=900, show_default=True, help="Seconds to wait for health.")
def up(scoring: bool, timeout: float) -> None:
    """Build what is missing, start the containers, wait until every one is healthy."""
    from fraudops.containers.compose import ComposeError
    from fraudops.secrets import ensure_secrets

    _engine()
    ensure_secrets(load_settings().env_dir)
    compose = _compose()
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
@click.option("--stop-engine", is_flag=True, help="Stop the Docker engine if `fraudops compose` started it.")
def down(volumes: bool, stop_engine: bool) -> None:
    """Stop and remove the containers; the data volumes stay unless --volumes."""
    from fraudops.containers.compose import state_dir
    from fraudops.containers.engine import engine_answers
    from fraudops.containers.engine import stop_engine as stop

    if engine_answers():
        _compose().down(volumes=volumes)
    if stop_engine:
        stop(state_dir(load_settings()), log=lambda line: click.echo(f"    {line}"))


@compose_group.command()
def status() -> None:
    """Every container of the project with its state; exit 1 unless all are ready."""
    states = _compose().states()
    for state in states:
        click.echo(f"  {state.service:<24} {state.describe()}")
    if not states or not all(s.ready for s in states):
        sys.exit(1)
