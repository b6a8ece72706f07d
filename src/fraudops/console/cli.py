"""``fraudops console``: serve the console, and manage its people."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fraudops.config.settings import Settings, load_settings

APP = Path(__file__).with_name("app.py")


def streamlit_argv(settings: Settings, streamlit: str) -> list[str]:
    """The Streamlit server of the console, bound like every service to stack.host."""
    return [
        streamlit,
        "run",
        str(APP),
        "--server.address",
        settings.stack.host,
        "--server.port",
        str(settings.stack.ports.console),
        "--server.headless",
        "true",
        # no telemetry, no file watcher on the installed package, no CORS/XSRF relaxation
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--theme.base",
        "light",
    ]


def users_file(settings: Settings) -> Path:
    return settings.path(settings.console.users_file)


@click.group("console")
def console_group() -> None:
    """The analyst console (Streamlit): serve it, add or remove its people."""


@console_group.command("serve")
def serve() -> None:
    """Create the default people if missing, then run the Streamlit server (in this process)."""
    import sys

    from fraudops.console.users import ensure_console_users

    settings = load_settings()
    added = ensure_console_users(settings)
    if added:
        click.echo(f"console: created {', '.join(added)} in {settings.console.users_file}")
    streamlit = str(Path(sys.executable).parent / "streamlit")
    argv = streamlit_argv(settings, streamlit)
    os.chdir(settings.project_root)
    os.execv(streamlit, argv)


@console_group.command("add-user")
@click.argument("name")
@click.option("--role", type=click.Choice(["analyst", "viewer"]), required=True)
def add_user(name: str, role: str) -> None:
    """Add a person or change their role and password; the password is asked (never an argument)."""
    from fraudops.console.users import UserStore

    password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    UserStore(users_file(load_settings())).set_user(name, role, password)
    click.echo(f"{name}: {role}")


@console_group.command("remove-user")
@click.argument("name")
def remove_user(name: str) -> None:
    """Remove a person; their past verdicts stay in fraud_labels."""
    from fraudops.console.users import UserStore

    if not UserStore(users_file(load_settings())).remove_user(name):
        raise click.ClickException(f"no user {name!r}")
    click.echo(f"removed {name}")
