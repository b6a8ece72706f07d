"""The console's operational panels: what Prometheus knows of the platform (every scrape target's health,
the alerts firing, the scorer's throughput, latency, lag and dead letters, the champion's version).

The HTTP calls are in :class:`Prometheus`; the shaping of its answers into frames is plain functions,
tested on static payloads. The queries are the ones the alert rules (``configs/prometheus/rules.yml``)
and the Grafana dashboards read, so the console and the pager agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

# title -> PromQL, each one series over time (charts of the last hour)
PANELS: Mapping[str, str] = {
    "Scored (tx/s)": "sum(rate(fraudops_scorer_scored_total[1m]))",
    "Latency p99 (s, event to score)": (
        "histogram_quantile(0.99, sum by (le) (rate(fraudops_scorer_latency_seconds_bucket[5m])))"
    ),
    "Consumer lag (records)": "sum(fraudops_scorer_consumer_lag_records)",
    "Dead letters (/s)": "sum(rate(fraudops_scorer_dead_letters_total[5m]))",
    "Flagged REVIEW + BLOCK (per 5 min)": (
        'sum(increase(fraudops_scorer_decisions_total{decision=~"REVIEW|BLOCK"}[5m]))'
    ),
    "Champion version": "max(fraudops_champion_version)",
}

TARGET_COLUMNS = ["job", "instance", "health", "last_scrape", "error"]
ALERT_COLUMNS = ["alert", "severity", "state", "since", "summary"]


class PrometheusError(RuntimeError):
    """Prometheus did not answer, or answered with an error."""


def prometheus_url(settings: Any) -> str:
    return f"http://{settings.host_of('prometheus')}:{settings.stack.ports.prometheus}"


def _data(body: Mapping[str, Any]) -> Any:
    if body.get("status") != "success":
        raise PrometheusError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
    return body["data"]


def targets_frame(body: Mapping[str, Any]) -> pd.DataFrame:
    """Active scrape targets, the unhealthy first, then by job and instance."""
    rows = [
        {
            "job": t["labels"].get("job", ""),
            "instance": t["labels"].get("instance", ""),
            "health": t.get("health", "unknown"),
            "last_scrape": t.get("lastScrape", ""),
            "error": t.get("lastError", ""),
        }
        for t in _data(body).get("activeTargets", [])
    ]
    frame = pd.DataFrame(rows, columns=TARGET_COLUMNS)
    frame["_up"] = frame["health"] == "up"
    return frame.sort_values(["_up", "job", "instance"]).drop(columns="_up").reset_index(drop=True)


def alerts_frame(body: Mapping[str, Any]) -> pd.DataFrame:
    """Alerts that are firing or pending, firing first, newest first."""
    rows = [
        {
            "alert": a["labels"].get("alertname", ""),
            "severity": a["labels"].get("severity", ""),
            "state": a.get("state", ""),
            "since": a.get("activeAt", ""),
            "summary": a.get("annotations", {}).get("summary", ""),
        }
        for a in _data(body).get("alerts", [])
    ]
    frame = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    frame["_firing"] = frame["state"] == "firing"
    ordered = frame.sort_values(["_firing", "since"], ascending=[False, False])
    return ordered.drop(columns="_firing").reset_index(drop=True)


def series_frame(body: Mapping[str, Any], name: str) -> pd.DataFrame:
    """A range query's single series as a frame indexed by UTC time (empty when nothing matched);
    several series are summed."""
    result = _data(body).get("result", [])
    parts = [
        pd.Series(
            [float(v) for _, v in series["values"]],
            index=pd.to_datetime([float(t) for t, _ in series["values"]], unit="s", utc=True),
        )
        for series in result
    ]
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=float)})
    total = pd.concat(parts, axis=1).sum(axis=1, min_count=1)
    return total.rename(name).to_frame().sort_index()


def latest(frame: pd.DataFrame) -> float | None:
    """The newest value of a one-column series frame (None when empty)."""
    column = frame.iloc[:, 0].dropna()
    return float(column.iloc[-1]) if len(column) else None


@dataclass(frozen=True)
class Prometheus:
    """Prometheus's HTTP API, read-only."""

    url: str
    timeout: float = 5.0

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        import requests

        try:
            response = requests.get(f"{self.url}{path}", params=params, timeout=self.timeout)
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise PrometheusError(f"Prometheus at {self.url} did not answer: {exc}") from exc

    def targets(self) -> pd.DataFrame:
        return targets_frame(self._get("/api/v1/targets", {"state": "active"}))

    def alerts(self) -> pd.DataFrame:
        return alerts_frame(self._get("/api/v1/alerts"))

    def series(self, name: str, query: str, start: datetime, end: datetime, step_s: int) -> pd.DataFrame:
        params = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": str(step_s),
        }
        return series_frame(self._get("/api/v1/query_range", params), name)
