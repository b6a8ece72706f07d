"""Checks of the scorer service's and the producer's metrics as Prometheus scrapes them against what the
scorer committed: rows, scored, dead letters, decisions, latencies, the model version, lag per partition.
Called by tests/integration/test_scorer_service.py on the service it starts."""

from __future__ import annotations

import itertools
import time
from typing import Any

import requests
from scorer_support import (
    IsolatedStream,
    delete_rows,
    query,
    wait_scored,
)

from fraudops.fraud_db import fraud_dsn
from fraudops.kafka_client import kafka_producer
from fraudops.monitoring.metrics import ProducerMetrics, serve
from fraudops.producer import produce

GOOD, BAD = 300, 7


def _query(settings: Any, promql: str) -> dict[tuple, float]:
    url = f"http://{settings.stack.host}:{settings.stack.ports.prometheus}/api/v1/query"
    result = requests.get(url, params={"query": promql}, timeout=10).json()["data"]["result"]
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}


def _one(settings: Any, promql: str) -> float | None:
    values = list(_query(settings, promql).values())
    return values[0] if len(values) == 1 else None


def check_scorer_metrics(running_stack: Any, model: str, version: str, topic: str) -> None:
    """Streams GOOD events and BAD malformed records into ``topic`` of the running scorer service (which
    follows ``model``, version ``version``); deletes its rows at the end."""
    settings = running_stack.settings
    stream = IsolatedStream.new("met")
    dsn = fraud_dsn(settings, running_stack.secrets)
    producer_metrics = ProducerMetrics()
    server = serve(producer_metrics.registry, settings.stack.host, settings.stack.ports.producer_metrics)
    try:
        client = kafka_producer(settings.kafka_bootstrap_servers)
        for i in range(BAD):
            client.produce(topic, value=b"not json %d" % i if i % 2 else b'{"transaction_id": 1}')
        assert client.flush(30) == 0
        stats = produce(
            itertools.islice(stream.events(), GOOD),
            client,
            topic,
            progress=lambda s: producer_metrics.update(s.sent, s.acked, s.failed, s.labels_written),
        )
        assert stats.acked == GOOD
        assert wait_scored(dsn, stream.prefix, GOOD, None, 180) == GOOD
        flagged = query(
            dsn,
            "SELECT count(*) FROM transactions_with_score "
            "WHERE transaction_id LIKE %s AND decision <> 'APPROVE'",
            (stream.prefix + "-%",),
        )[0][0]

        expected = {
            'fraudops_scorer_scored_total{job="scorer"}': GOOD,
            'fraudops_scorer_records_total{job="scorer"}': GOOD + BAD,
            'sum(fraudops_scorer_dead_letters_total{job="scorer"})': BAD,
            'sum(fraudops_scorer_decisions_total{job="scorer"})': GOOD,
            'sum(fraudops_scorer_decisions_total{job="scorer", decision!="APPROVE"})': flagged,
            'fraudops_scorer_latency_seconds_count{job="scorer"}': GOOD,
            f'fraudops_scorer_model_version{{job="scorer", model="{model}"}}': float(version),
            'fraudops_producer_acked_total{job="producer"}': GOOD,
            'sum(fraudops_scorer_consumer_lag_records{job="scorer"})': 0,
        }
        want = {q: float(v) for q, v in expected.items()}
        deadline, seen = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            seen = {q: _one(settings, q) for q in expected}
            if seen == want:
                break
            time.sleep(2)
        # this module is not rewritten by pytest: name what differs
        assert seen == want, {q: (seen.get(q), v) for q, v in want.items() if seen.get(q) != v}
    finally:
        server.shutdown()
        delete_rows(dsn, stream.prefix)
    # the lag is reported per partition of the source topic (3), the stages of each micro-batch by name
    lag = _query(settings, f'fraudops_scorer_consumer_lag_records{{job="scorer", topic="{topic}"}}')
    assert sorted(dict(k)["partition"] for k in lag) == ["0", "1", "2"]
    stage_counts = _query(settings, 'fraudops_scorer_batch_stage_seconds_count{job="scorer"}')
    stages = {dict(k)["stage"] for k in stage_counts}
    assert stages >= {"read", "parse", "features", "model", "postgres", "kafka"}
    buckets = 'fraudops_scorer_latency_seconds_bucket{job="scorer"}'
    p99 = _one(settings, f"histogram_quantile(0.99, sum by (le) ({buckets}))")
    assert p99 is not None and 0 < p99 < 300
