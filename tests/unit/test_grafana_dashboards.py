"""The provisioned Grafana dashboards and the console's operational panels only query metrics that
something in the stack exports: our own processes (fraudops.monitoring), the Kafka JMX rules and the StatsD
mapping we commit, Prometheus itself, and the named metrics of the third-party exporters
(tests/integration/test_monitoring.py finds those on the running stack)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from fraudops.console.operations import PANELS
from fraudops.monitoring import metrics, platform

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "configs" / "grafana" / "dashboards").glob("*.json"))
# Prometheus's own series, and what the third-party exporters export under these names
PROMETHEUS = {"up", "ALERTS"}
THIRD_PARTY = {name for names in metrics.THIRD_PARTY_METRICS.values() for name in names}
_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def _ours() -> set[str]:
    names = {*metrics.EXPORTED_METRICS, *platform.EXPORTED_METRICS}
    return {n + s for n in names for s in _SUFFIXES}


def _rule_patterns() -> list[re.Pattern[str]]:
    patterns = []
    jmx = yaml.safe_load((REPO / "configs/prometheus/kafka-jmx.yml").read_text())
    for rule in jmx["rules"]:
        patterns.append(re.compile(re.sub(r"\\\$\d", "[a-z0-9_]+", re.escape(rule["name"])) + "$"))
    statsd = yaml.safe_load((REPO / "configs/prometheus/statsd-mapping.yml").read_text())
    for mapping in statsd["mappings"]:
        patterns.append(re.compile(re.escape(mapping["name"]) + "(_bucket|_sum|_count)?$"))
    return patterns


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()[:1]
        if following == "(":  # a function or an aggregation
            continue
        names.add(match.group(0))
    return names


def _dashboard_queries() -> list[tuple[str, str, str]]:
    return [
        (path.name, panel["title"], target["expr"])
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]


def _queries() -> list[tuple[str, str, str]]:
    return [*_dashboard_queries(), *(("console", title, expr) for title, expr in PANELS.items())]


def test_metric_names_of_promql() -> None:
    expr = 'histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{job="x"}[5m]))) / ignoring(x) b'
    assert metric_names(expr) == {"a_seconds_bucket", "b"}


def test_dashboards_cover_the_issue_panels() -> None:
    titles = " ".join(title.lower() for _, title, _ in _dashboard_queries())
    for topic in (
        "throughput",
        "latency",
        "lag",
        "decisions",
        "flagged",
        "dead letters",
        "champion",
        "drift",
        "dag runs",
        "service health",
    ):
        assert topic in titles, topic


@pytest.mark.parametrize(("dashboard", "title", "expr"), _queries())
def test_every_query_names_a_metric_we_export(dashboard: str, title: str, expr: str) -> None:
    known, patterns = _ours() | PROMETHEUS | THIRD_PARTY, _rule_patterns()
    names = metric_names(expr)
    assert names, (dashboard, title, expr)
    unknown = {n for n in names if n not in known and not any(p.match(n) for p in patterns)}
    assert unknown == set(), (dashboard, title)


def test_dashboards_use_the_provisioned_datasource() -> None:
    source = yaml.safe_load((REPO / "configs/grafana/provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ][0]
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] == source["uid"], (path.name, panel["title"])
