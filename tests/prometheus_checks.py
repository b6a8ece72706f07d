"""Checks of a running Prometheus shared by the native and the compose tiers.

The tests ask Prometheus's HTTP API directly rather than through ``console.operations.Prometheus``: that
class turns answers into the console's tables, and a test that reads the raw API also catches a console
that drops a job or a series."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

# each exporter reaches what it watches, not only itself: one series per watched service, each >= 1
EXPORTER_QUERIES = (
    "pg_up",
    "redis_up",
    "minio_cluster_nodes_online_total",
    "flower_worker_online",
    "mlflow_exporter_info",
    # one active controller in the KRaft quorum, seen through the brokers' JMX agents
    "sum(kafka_controller_kafkacontroller_activecontrollercount)",
    # Airflow's StatsD through statsd_exporter
    "airflow_scheduler_heartbeat",
)


def prometheus_api(settings: Any, path: str, **params: str) -> Any:
    """The ``data`` of a Prometheus API answer on the published port; fails on an error answer."""
    url = f"http://{settings.stack.host}:{settings.stack.ports.prometheus}{path}"
    body = requests.get(url, params=params, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    describe: Callable[[], str] | None = None,
    interval: float = 0.5,
) -> Any:
    """The first truthy result of ``check``; fails naming ``what`` (and ``describe()``) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    detail = f" ({describe()})" if describe else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")


def job_health(settings: Any) -> dict[str, str]:
    """Each scrape job's health: up only when every one of its targets is (the brokers' three agents)."""
    states: dict[str, str] = {}
    for target in prometheus_api(settings, "/api/v1/targets", state="active")["activeTargets"]:
        job = target["labels"]["job"]
        states[job] = "up" if states.get(job, "up") == "up" and target["health"] == "up" else "down"
    return states


def wait_until_jobs_up(settings: Any, required: set[str], timeout: float) -> dict[str, str]:
    """Every required job up; returns the health of every job Prometheus scrapes."""
    return wait_for(
        "every required target up",
        lambda: (s := job_health(settings)) and all(s.get(j) == "up" for j in required) and s,
        timeout=timeout,
        describe=lambda: f"targets now: {job_health(settings)}",
        interval=1.0,
    )


def assert_exporters_reach_what_they_watch(settings: Any, timeout: float) -> None:
    for query in EXPORTER_QUERIES:
        result = wait_for(
            query, lambda q=query: prometheus_api(settings, "/api/v1/query", query=q)["result"], timeout
        )
        assert float(result[0]["value"][1]) >= 1, (query, result)
