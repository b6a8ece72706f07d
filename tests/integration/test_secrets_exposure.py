"""No secret of the stack on any command line, where every local user can read it (`ps`, /proc/*/cmdline),
nor in the environment of any of its processes (/proc/*/environ, inherited by every child)."""

from __future__ import annotations

import re
import secrets as random
import threading
import time

import requests

from fraudops.airflow_api import AirflowApi
from fraudops.stack import process
from fraudops.stack.airflow_env import airflow_config_file
from fraudops.stack.airflow_init import init_airflow
from fraudops.stack.process import command_lines
from fraudops.stack.services import venv_bin

SECRET_KEY = re.compile(r"PASSWORD|SECRET|_KEY$")
HOLD_DAG = "platform_smoke"


def _secret_values(secrets) -> dict[str, str]:
    # user names (POSTGRES_USER, MINIO_ROOT_USER) are not secrets; every password, key and token is
    return {key: value for key, value in secrets.items() if SECRET_KEY.search(key) and value}


def _stack_processes(stack) -> dict[int, str]:
    """Every process the stack manager started and everything below them, with its command line."""
    roots = {pid for name in stack.services() if (pid := process.running_pid(stack.layout, name))}
    lines = command_lines()
    return {pid: lines.get(pid, "?") for pid in process.descendants(roots)}


def _leaks(pids: dict[int, str], values: dict[str, str]) -> list[str]:
    found = []
    for pid, line in pids.items():
        environ = process.environ_of(pid)
        if environ is None:  # gone meanwhile
            continue
        text = "\n".join(f"{k}={v}" for k, v in environ.items())
        found += [
            f"{key} in the environment of pid {pid} ({line[:60]})"
            for key, value in values.items()
            if value in text
        ]
    return sorted(found)


def test_no_secret_in_the_environment_of_any_process_of_the_stack(running_stack) -> None:
    """Every service, its workers and children, and an Airflow task while it runs: none inherits a secret
    from env/*.env in its environment (each program reads its own from a private file)."""
    values = _secret_values(running_stack.secrets)
    stack = running_stack.stack
    api = AirflowApi(running_stack.settings, running_stack.secrets)
    api.wait_for_dag(HOLD_DAG, timeout=120)
    run_id = api.trigger(HOLD_DAG, {"hold_seconds": 45})
    try:
        deadline, tasks, pids = time.monotonic() + 150, {}, {}
        while not tasks and time.monotonic() < deadline:
            time.sleep(0.5)
            running = [ti["id"] for ti in api.task_instances(HOLD_DAG, run_id) if ti["state"] == "running"]
            pids = _stack_processes(stack)
            # the task runner's process title holds its task instance's id (Airflow's task runner sets it)
            tasks = {pid: line for pid, line in pids.items() for ti in running if ti in line}
        assert tasks, f"no task process of {HOLD_DAG} appeared under the Celery worker"
        started = {name for name in stack.services() if process.running_pid(stack.layout, name)}
        assert {"postgres", "minio", "mlflow", "airflow-worker", "redis-exporter"} <= started
        assert _leaks(pids, values) == []
        # the scan reads the environments: Airflow's processes hold the path of their configuration file.
        # A process that sets its title (Celery's, Airflow's task runner) overwrites the area /proc shows
        # as its environ with it; what it inherited is its parent's environment, scanned here too
        config = str(airflow_config_file(running_stack.settings))
        assert len(_leaks(pids, {"AIRFLOW_CONFIG": config})) >= 3, "the environments were not read"
        # the sample held more than the services' own processes: their workers and children, the task
        assert len(pids) > len(started)
    finally:
        api.wait(HOLD_DAG, run_id, timeout=180, poll=2)


def test_no_secret_on_any_command_line_of_the_running_stack(running_stack) -> None:
    values = _secret_values(running_stack.secrets)
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
