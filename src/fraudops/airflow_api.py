"""A small client of Airflow's REST API (v2), for `make demo`, the CLI and the tests."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests

from fraudops.config.settings import Settings

FINISHED = {"success", "failed"}


class AirflowApi:
    def __init__(self, settings: Settings, secrets: Mapping[str, str], timeout: float = 30.0) -> None:
        self.base = settings.airflow_url
        self.timeout = timeout
        response = requests.post(
            f"{self.base}/auth/token",
            json={"username": settings.airflow.admin_user, "password": secrets["AIRFLOW_ADMIN_PASSWORD"]},
            timeout=timeout,
        )
        response.raise_for_status()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}/api/v2{path}", timeout=self.timeout, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def fab_user(self, username: str) -> dict[str, Any]:
        """A person of the FAB auth manager (its roles included)."""
        from urllib.parse import quote

        response = self.session.get(
            f"{self.base}/auth/fab/v1/users/{quote(username, safe='')}", timeout=self.timeout
        )
        response.raise_for_status()
        return dict(response.json())

    def get(self, path: str, **params: Any) -> Any:
        """GET ``/api/v2<path>``; raises on an error status."""
        return self._call("GET", path, params=params)

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> None:
        """Wait until the dag-processor has parsed ``dag_id``, then unpause it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dags = self._call("GET", "/dags", params={"dag_id_pattern": dag_id})["dags"]
            if any(d["dag_id"] == dag_id for d in dags):
                self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
                return
            time.sleep(2)
        raise TimeoutError(f"DAG {dag_id} not parsed after {timeout:.0f} s")

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        run = self._call(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})}
        )
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 900.0, poll: float = 3.0) -> str:
        deadline = time.monotonic() + timeout
        state = "queued"
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in FINISHED:
                return state
            time.sleep(poll)
        raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s")

    def wait_until_idle(self, dag_id: str, timeout: float = 900.0, settle: float = 5.0) -> None:
        """Wait until ``dag_id`` has no queued or running run (checked twice, ``settle`` seconds apart)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            runs = self._call("GET", f"/dags/{dag_id}/dagRuns", params={"state": ["queued", "running"]})
            quiet = quiet + 1 if not runs["dag_runs"] else 0
            if quiet >= 2:
                return
            time.sleep(settle)
        raise TimeoutError(f"{dag_id} still has active runs after {timeout:.0f} s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self._call("GET", path, params={"map_index": map_index, "deserialize": True})["value"]

    def links(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, str | None]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links"
        return dict(self._call("GET", path, params={"map_index": map_index})["extra_links"])
