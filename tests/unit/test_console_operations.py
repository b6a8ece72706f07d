"""The console's operational panels: Prometheus's API answers (as its HTTP API shapes them) into frames."""

from __future__ import annotations

import pandas as pd
import pytest

from fraudops.console.operations import (
    PrometheusError,
    alerts_frame,
    latest,
    series_frame,
    targets_frame,
)


def _target(job: str, instance: str, health: str, error: str = "") -> dict:
    return {
        "labels": {"job": job, "instance": instance},
        "health": health,
        "lastError": error,
        "lastScrape": "2026-12-01T02:00:00Z",
    }


def test_targets_list_the_unhealthy_first() -> None:
    body = {
        "status": "success",
        "data": {
            "activeTargets": [
                _target("redis", "127.0.0.1:9121", "up"),
                _target("kafka", "127.0.0.1:9405", "down", "connection refused"),
                _target("kafka", "127.0.0.1:9404", "up"),
                _target("scorer", "127.0.0.1:9108", "unknown"),
            ],
            "droppedTargets": [],
        },
    }
    frame = targets_frame(body)
    assert frame[["job", "instance", "health"]].values.tolist() == [
        ["kafka", "127.0.0.1:9405", "down"],
        ["scorer", "127.0.0.1:9108", "unknown"],
        ["kafka", "127.0.0.1:9404", "up"],
        ["redis", "127.0.0.1:9121", "up"],
    ]
    assert frame.loc[0, "error"] == "connection refused"


def test_alerts_put_firing_before_pending_newest_first() -> None:
    def alert(name: str, state: str, since: str) -> dict:
        return {
            "labels": {"alertname": name, "severity": "critical"},
            "annotations": {"summary": f"{name} summary"},
            "state": state,
            "activeAt": since,
        }

    body = {
        "status": "success",
        "data": {
            "alerts": [
                alert("ScorerLagging", "pending", "2026-12-01T02:05:00Z"),
                alert("ServiceDown", "firing", "2026-12-01T01:00:00Z"),
                alert("ScorerDown", "firing", "2026-12-01T02:00:00Z"),
            ]
        },
    }
    frame = alerts_frame(body)
    assert frame[["alert", "state"]].values.tolist() == [
        ["ScorerDown", "firing"],
        ["ServiceDown", "firing"],
        ["ScorerLagging", "pending"],
    ]
    assert frame.loc[0, "summary"] == "ScorerDown summary"
    assert alerts_frame({"status": "success", "data": {"alerts": []}}).empty


def test_a_range_answer_becomes_one_series_summed_over_its_parts() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": {"partition": "0"}, "values": [[1764554400, "3"], [1764554415, "5"]]},
                {"metric": {"partition": "1"}, "values": [[1764554415, "1"], [1764554430, "2"]]},
            ],
        },
    }
    frame = series_frame(body, "lag")
    assert list(frame.columns) == ["lag"]
    assert frame["lag"].tolist() == [3.0, 6.0, 2.0]
    assert frame.index[0] == pd.Timestamp(1764554400, unit="s", tz="UTC")
    assert latest(frame) == 2.0
    empty = series_frame({"status": "success", "data": {"resultType": "matrix", "result": []}}, "lag")
    assert empty.empty and latest(empty) is None


def test_an_error_answer_is_a_clear_error() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": 'parse error at char 5: unexpected "("'}
    with pytest.raises(PrometheusError, match="bad_data: parse error"):
        series_frame(body, "x")


def test_prometheus_is_found_where_the_settings_say(monkeypatch) -> None:
    from fraudops.config.settings import load_settings
    from fraudops.console.operations import prometheus_url

    settings = load_settings()
    assert prometheus_url(settings) == f"http://{settings.stack.host}:{settings.stack.ports.prometheus}"
    monkeypatch.setenv("FRAUDOPS_STACK__HOSTS__PROMETHEUS", "prometheus")
    assert prometheus_url(load_settings()) == f"http://prometheus:{settings.stack.ports.prometheus}"
