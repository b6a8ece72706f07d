"""Prometheus and Alertmanager on the real stack: every target the configuration lists is scraped and up,
and a real outage (an exporter killed with SIGKILL) reaches a webhook receiver as a Slack-style message,
then its resolution after the restart."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from fraudops.config.settings import load_settings
from fraudops.monitoring.metrics import THIRD_PARTY_METRICS
from fraudops.monitoring.prometheus import WEBHOOK_PATH
from fraudops.stack import process
from fraudops.stack.manager import Stack
from fraudops.stack.monitoring import listed_jobs
from prometheus_checks import (
    assert_exporters_reach_what_they_watch,
    prometheus_api,
    wait_for,
    wait_until_jobs_up,
)

# the victim: a real scrape target whose loss harms nothing else
VICTIM = "redis-exporter"
VICTIM_JOB = "redis"
# short enough for a test, the same rules and routes as always
FAST = {
    "scrape_interval": "1s",
    "evaluation_interval": "1s",
    "group_wait": "1s",
    "group_interval": "2s",
    "alerts": {"down_for": "3s"},
}


def test_every_listed_target_is_scraped_and_up(running_stack: Any) -> None:
    settings = running_stack.settings
    jobs = listed_jobs(settings, running_stack.stack.layout)
    required = {job.name for job in jobs if not job.optional}

    # a stack that just came up may not have scraped every target yet, and a broker an earlier test
    # killed and restarted takes a while to serve its JMX agent again
    states = wait_until_jobs_up(settings, required, timeout=180)
    assert set(states) == {job.name for job in jobs}
    assert_exporters_reach_what_they_watch(settings, timeout=30)
    # what the Grafana dashboards read from the third-party exporters is there
    for job, names in THIRD_PARTY_METRICS.items():
        for name in names:
            series = wait_for(
                name,
                lambda n=name, j=job: prometheus_api(settings, "/api/v1/query", query=f'{n}{{job="{j}"}}')[
                    "result"
                ],
                30,
            )
            assert series, name
    kafka = prometheus_api(settings, "/api/v1/query", query='up{job="kafka"}')["result"]
    assert len(kafka) == len(settings.stack.ports.kafka)


def test_the_exporters_role_reads_statistics_and_drift_reports_only(running_stack: Any) -> None:
    import psycopg2
    from psycopg2 import errors

    from fraudops.connections import fraud_role_dsn, monitor_dsn

    dsn = monitor_dsn(running_stack.settings, running_stack.secrets)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_database")
        assert cur.fetchone()[0] >= 3
        with pytest.raises(errors.InsufficientPrivilege):
            cur.execute("CREATE TABLE monitor_may_not (i int)")
    conn.close()
    # in the fraud database, the platform exporter's one read: the latest drift report
    fraud = fraud_role_dsn(running_stack.settings, running_stack.secrets, "monitor")
    with psycopg2.connect(fraud) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM drift_reports")
        with pytest.raises(errors.InsufficientPrivilege):
            cur.execute("SELECT count(*) FROM transactions_raw")
    conn.close()


def test_the_console_reads_the_same_targets_and_series(running_stack: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from fraudops.console.operations import Prometheus, prometheus_url

    settings = running_stack.settings
    prometheus = Prometheus(prometheus_url(settings))
    targets = prometheus.targets()
    assert {job.name for job in listed_jobs(settings, running_stack.stack.layout)} == set(targets["job"])
    end = datetime.now(UTC)
    up = prometheus.series("up", "sum(up)", end - timedelta(minutes=5), end, 15)
    assert not up.empty and up["up"].iloc[-1] >= 1
    assert prometheus.alerts().columns.tolist() == ["alert", "severity", "state", "since", "summary"]


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 (the handler's name is http.server's)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == WEBHOOK_PATH:
            self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_receiver(running_stack: Any) -> Iterator[list[dict[str, Any]]]:
    """A real HTTP server where the default webhook URL points (stack.ports.alert_webhook)."""
    settings = running_stack.settings
    received: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer((settings.stack.host, settings.stack.ports.alert_webhook), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


class _LocalWebhookStack(Stack):
    """The stack with the default webhook (the local receiver), whatever env/alertmanager.env says."""

    def _secrets(self) -> Mapping[str, str]:
        return {**super()._secrets(), "ALERT_WEBHOOK_URL": ""}


@pytest.fixture
def fast_alerting(running_stack: Any) -> Iterator[Stack]:
    """Prometheus and Alertmanager restarted with short intervals and the local webhook, then restarted
    as they were."""
    fast = _LocalWebhookStack(load_settings(monitoring=FAST), log=lambda _line: None)
    names = ["alertmanager", "prometheus"]
    try:
        fast.down(names)
        fast.start(names)
        yield fast
    finally:
        running_stack.stack.down(names)
        running_stack.stack.start(names)


def _texts(received: list[dict[str, Any]]) -> list[str]:
    return [
        f"{a.get('title', '')} {a.get('text', '')}"
        for message in received
        for a in message.get("attachments", [])
    ]


def test_a_killed_target_pages_the_webhook_and_its_return_resolves(
    running_stack: Any, webhook_receiver: list[dict[str, Any]], fast_alerting: Stack
) -> None:
    stack = running_stack.stack
    settings = running_stack.settings
    host, port = settings.stack.host, settings.stack.ports.redis_exporter
    # the target is scraped and up before the fault
    wait_for(
        f"{VICTIM_JOB} up",
        lambda: any(
            t["labels"]["job"] == VICTIM_JOB and t["health"] == "up"
            for t in prometheus_api(settings, "/api/v1/targets")["activeTargets"]
        ),
        timeout=30,
    )
    pid = process.running_pid(stack.layout, VICTIM)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    try:
        firing = wait_for(
            "the ServiceDown message",
            lambda: [t for t in _texts(webhook_receiver) if "[FIRING" in t and f"{host}:{port}" in t],
            timeout=60,
        )
        assert "ServiceDown" in firing[0] and f"{VICTIM_JOB} ({host}:{port}) does not answer" in firing[0]
        assert webhook_receiver[0]["attachments"], webhook_receiver[0]
    finally:
        stack.start([VICTIM])
    resolved = wait_for(
        "the resolution",
        # another alert (an earlier test's restarted broker) may resolve in the meantime: the victim's
        lambda: [
            t
            for t in _texts(webhook_receiver)
            if "[RESOLVED" in t and "ServiceDown" in t and f"{host}:{port}" in t
        ],
        timeout=60,
    )
    assert f"{host}:{port}" in resolved[0]
