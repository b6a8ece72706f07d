"""Airflow: REST with logins and roles, a DAG run on the Celery worker, and Flower's view of the worker."""

from __future__ import annotations

import time
import uuid

import requests

from fraudops.airflow_api import AirflowApi
from fraudops.stack.airflow_env import FLOWER_USER
from fraudops.stack.airflow_init import airflow_command
from fraudops.stack.services import venv_bin

DAG_ID = "platform_smoke"


def test_rest_api_requires_login(running_stack) -> None:
    response = requests.get(f"{running_stack.settings.airflow_url}/api/v2/dags", timeout=10)
    assert response.status_code == 401
    bad = requests.post(
        f"{running_stack.settings.airflow_url}/auth/token",
        json={"username": "admin", "password": "wrong"},
        timeout=10,
    )
    assert bad.status_code in (401, 403)


def test_roles_limit_what_a_user_may_do(running_stack) -> None:
    """FAB auth manager: a Viewer reads DAGs through the REST API but may not trigger one."""
    settings, secrets = running_stack.settings, running_stack.secrets
    airflow = airflow_command(settings, secrets, venv_bin("airflow"))
    user, password = f"viewer-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    # fmt: off
    airflow("users", "create", "--username", user, "--password", password, "--role", "Viewer",
            "--email", f"{user}@example.com", "--firstname", "Read", "--lastname", "Only")
    # fmt: on
    try:
        token = requests.post(
            f"{settings.airflow_url}/auth/token", json={"username": user, "password": password}, timeout=10
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        dags = requests.get(f"{settings.airflow_url}/api/v2/dags", headers=headers, timeout=10)
        assert dags.status_code == 200 and dags.json()["total_entries"] >= 1
        trigger = requests.post(
            f"{settings.airflow_url}/api/v2/dags/{DAG_ID}/dagRuns",
            headers=headers,
            json={"logical_date": None},
            timeout=10,
        )
        assert trigger.status_code == 403, trigger.text
    finally:
        airflow("users", "delete", "--username", user)


def test_dag_runs_on_the_celery_worker(running_stack) -> None:
    api = AirflowApi(running_stack.settings, running_stack.secrets)
    api.wait_for_dag(DAG_ID, timeout=120)  # the dag-processor may still be parsing after a fresh start
    run_id = api.trigger(DAG_ID)
    assert api.wait(DAG_ID, run_id, timeout=180, poll=2) == "success"

    (ti,) = api.task_instances(DAG_ID, run_id)
    assert ti["state"] == "success"
    assert ti["queue"] == "default"  # a Celery queue: the LocalExecutor has none
    # the worker serves no logs over HTTP (its log server would listen on every interface): the api-server
    # reads what the worker wrote from the shared log folder
    logs = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}")
    text = str(logs["content"])
    assert "Filling up the DagBag" in text and "Could not read served logs" not in text, text[:2000]
    try:
        config = api.get("/config", section="core")
    except requests.HTTPError:  # exposing the config is optional in Airflow
        config = None
    if config is not None:  # when exposed it must say Celery
        options = {o["key"]: o["value"] for s in config["sections"] for o in s["options"]}
        assert options.get("executor") == "CeleryExecutor"

    # Flower saw the worker execute it
    auth = (FLOWER_USER, running_stack.secrets["FLOWER_PASSWORD"])
    flower = running_stack.settings.flower_url
    workers = requests.get(f"{flower}/api/workers", auth=auth, params={"refresh": 1}, timeout=20).json()
    assert workers, "Flower lists no Celery worker"

    def celery_ran_it() -> bool:
        tasks = requests.get(f"{flower}/api/tasks", auth=auth, timeout=20).json()
        return any(run_id in str(t.get("args")) and t.get("state") == "SUCCESS" for t in tasks.values())

    # the Celery task ends just after Airflow records the task instance's success: give its event time
    deadline = time.monotonic() + 60
    while not celery_ran_it() and time.monotonic() < deadline:
        time.sleep(2)
    assert celery_ran_it(), "Flower never saw the task succeed on a Celery worker"


def test_flower_requires_login(running_stack) -> None:
    response = requests.get(f"{running_stack.settings.flower_url}/api/workers", timeout=10)
    assert response.status_code == 401
