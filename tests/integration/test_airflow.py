"""Airflow: authenticated REST, a DAG run executed by the Celery worker, and Flower's view of the worker."""

from __future__ import annotations

import time

import requests

from fraudops.stack.airflow_env import FLOWER_USER

DAG_ID = "platform_smoke"


def _token(running_stack) -> str:
    settings = running_stack.settings
    response = requests.post(
        f"{settings.airflow_url}/auth/token",
        json={
            "username": settings.airflow.admin_user,
            "password": running_stack.secrets["AIRFLOW_ADMIN_PASSWORD"],
        },
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def test_rest_api_requires_login(running_stack) -> None:
    response = requests.get(f"{running_stack.settings.airflow_url}/api/v2/dags", timeout=10)
    assert response.status_code == 401
    bad = requests.post(
        f"{running_stack.settings.airflow_url}/auth/token",
        json={"username": "admin", "password": "wrong"},
        timeout=10,
    )
    assert bad.status_code in (401, 403)


def test_dag_runs_on_the_celery_worker(running_stack) -> None:
    api = running_stack.settings.airflow_url + "/api/v2"
    headers = {"Authorization": f"Bearer {_token(running_stack)}"}

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the dag-processor may still be parsing after a fresh start
        listed = requests.get(f"{api}/dags", headers=headers, params={"dag_id_pattern": DAG_ID}, timeout=10)
        listed.raise_for_status()
        if any(d["dag_id"] == DAG_ID for d in listed.json()["dags"]):
            break
        time.sleep(2)
    else:
        raise AssertionError(f"{DAG_ID} never listed")

    requests.patch(
        f"{api}/dags/{DAG_ID}", headers=headers, json={"is_paused": False}, timeout=10
    ).raise_for_status()
    run = requests.post(
        f"{api}/dags/{DAG_ID}/dagRuns", headers=headers, json={"logical_date": None}, timeout=10
    )
    run.raise_for_status()
    run_id = run.json()["dag_run_id"]

    deadline = time.monotonic() + 180
    state = "queued"
    while time.monotonic() < deadline and state not in ("success", "failed"):
        time.sleep(2)
        state = requests.get(f"{api}/dags/{DAG_ID}/dagRuns/{run_id}", headers=headers, timeout=10).json()[
            "state"
        ]
    assert state == "success"

    tis = requests.get(
        f"{api}/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", headers=headers, timeout=10
    ).json()
    (ti,) = tis["task_instances"]
    assert ti["state"] == "success"
    assert ti["queue"] == "default"  # a Celery queue: the LocalExecutor has none
    config = requests.get(f"{api}/config", headers=headers, params={"section": "core"}, timeout=10)
    if config.ok:  # exposing the config is optional in Airflow; when exposed it must say Celery
        options = {o["key"]: o["value"] for s in config.json()["sections"] for o in s["options"]}
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
