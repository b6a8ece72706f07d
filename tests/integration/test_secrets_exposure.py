"""No secret of the stack on any command line, where every local user can read it (`ps`, /proc/*/cmdline)."""

from __future__ import annotations

import re
import secrets as random
import threading

import requests

from fraudops.stack.airflow_init import init_airflow
from fraudops.stack.process import command_lines
from fraudops.stack.services import venv_bin

SECRET_KEY = re.compile(r"PASSWORD|SECRET|_KEY$")


def test_no_secret_on_any_command_line_of_the_running_stack(running_stack) -> None:
    # user names (POSTGRES_USER, MINIO_ROOT_USER) are not secrets; every password, key and token is
    values = {key: value for key, value in running_stack.secrets.items() if SECRET_KEY.search(key)}
    assert values, "no secrets loaded"
    found = sorted(
        f"{key} in pid {pid}: {line[:80]}..."
        for pid, line in command_lines().items()
        for key, value in values.items()
        if value in line
    )
    assert found == []


def _token(settings, password: str) -> int:
    return requests.post(
        f"{settings.airflow_url}/auth/token",
        json={"username": settings.airflow.admin_user, "password": password},
        timeout=30,
    ).status_code


def test_setting_the_admin_password_never_shows_it_on_a_command_line(running_stack) -> None:
    """A changed AIRFLOW_ADMIN_PASSWORD is applied while every command line is watched for it."""
    settings, current = running_stack.settings, dict(running_stack.secrets)
    new = random.token_urlsafe(24)
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.extend(line for line in command_lines().values() if new in line)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        init_airflow(settings, {**current, "AIRFLOW_ADMIN_PASSWORD": new}, venv_bin("airflow"))
        assert _token(settings, new) in (200, 201)
        assert _token(settings, current["AIRFLOW_ADMIN_PASSWORD"]) == 401
    finally:
        done.set()
        watcher.join()
        init_airflow(settings, current, venv_bin("airflow"))
    assert seen == []
    assert _token(settings, current["AIRFLOW_ADMIN_PASSWORD"]) in (200, 201)
