"""The scorer's and producer's metrics: the bulk latency histogram counts exactly as Prometheus's own
histogram would, dead-letter reasons become a bounded set of labels, the lag comes from Spark's progress,
and the registry is served over HTTP in the text format Prometheus scrapes."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import requests
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fraudops.monitoring.metrics import (
    LATENCY_BUCKETS,
    SCORER_LATENCY,
    BulkHistogram,
    ProducerMetrics,
    ScorerMetrics,
    partition_lag,
    reason_label,
    serve,
)
from fraudops.scoring.parse import EventTimeWindow, validate_frame
from fraudops.scoring.store import CONFLICT_REASON
from hostile_events import hostile_stream


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if s.name.startswith(name):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_bulk_histogram_counts_as_prometheus_own_histogram() -> None:
    rng = np.random.default_rng(3)
    # on the bucket bounds exactly, between them, above them all, and not finite (dropped)
    values = np.concatenate([np.array(LATENCY_BUCKETS), rng.exponential(2.0, 5000), [1000.0, np.nan, np.inf]])
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    bulk = BulkHistogram(SCORER_LATENCY, "x", LATENCY_BUCKETS)
    ours.register(bulk)
    bulk.observe_many(values[:100])
    bulk.observe_many(values[100:])
    reference = Histogram(SCORER_LATENCY, "x", buckets=LATENCY_BUCKETS, registry=theirs)
    for v in values[np.isfinite(values)]:
        reference.observe(v)
    a, b = _samples(ours, SCORER_LATENCY), _samples(theirs, SCORER_LATENCY)
    assert {k for k in a if not k[0].endswith("_created")} == {k for k in b if not k[0].endswith("_created")}
    for key, value in a.items():
        assert value == b[key] or abs(value - b[key]) < 1e-6 * abs(b[key]), key


def test_reasons_of_hostile_records_make_few_labels() -> None:
    now = pd.Timestamp("2026-11-30 12:00:00")
    payloads = [payload for _, payload in hostile_stream(random.Random(5), now.to_pydatetime(), 3000)]
    now_ms = int(now.timestamp() * 1000)
    records = pd.DataFrame(
        {
            "value": payloads,
            "topic": "transactions_stream",
            "partition": 0,
            "offset": range(len(payloads)),
            "kafka_ts_ms": pd.array([now_ms] * len(payloads), dtype="Int64"),
        }
    )
    parsed = validate_frame(records, EventTimeWindow())
    reasons = parsed.loc[~parsed["ok"].astype(bool), "reason"]
    assert len(reasons) > 100 and reasons.nunique() > 50
    labels = {reason_label(r) for r in reasons}
    assert 1 < len(labels) <= 40 and all(0 < len(label) <= 40 for label in labels)
    assert reason_label(CONFLICT_REASON.format(id="a")) == reason_label(CONFLICT_REASON.format(id="b"))


def test_every_decision_is_counted_from_zero() -> None:
    metrics = ScorerMetrics()
    assert _samples(metrics.registry, "fraudops_scorer_decisions_total") == {
        ("fraudops_scorer_decisions_total", (("decision", d),)): 0.0 for d in ("APPROVE", "REVIEW", "BLOCK")
    }
    metrics.record_outputs(["APPROVE", "APPROVE"], [], np.array([0.1, 0.2]))
    counts = _samples(metrics.registry, "fraudops_scorer_decisions_total")
    assert counts[("fraudops_scorer_decisions_total", (("decision", "APPROVE"),))] == 2.0
    assert counts[("fraudops_scorer_decisions_total", (("decision", "BLOCK"),))] == 0.0


def test_partition_lag_from_spark_progress() -> None:
    sources = [
        {
            "endOffset": '{"transactions_stream": {"0": 100, "1": 250}}',
            "latestOffset": '{"transactions_stream": {"0": 160, "1": 250}}',
        }
    ]
    assert partition_lag(sources) == {("transactions_stream", 0): 60, ("transactions_stream", 1): 0}

    class Source:  # pyspark 4's SourceProgress: attributes, offsets as JSON strings
        endOffset = '{"t": {"2": 5}}'
        latestOffset = '{"t": {"2": 9}}'

    assert partition_lag([Source()]) == {("t", 2): 4}
    assert partition_lag([{"endOffset": None, "latestOffset": None}]) == {}


def test_scorer_metrics_served_over_http() -> None:
    metrics = ScorerMetrics()
    metrics.record_outputs(
        pd.Series(["APPROVE", "APPROVE", "BLOCK"]),
        pd.Series(["unreadable JSON: Expecting value", "missing field: tx_amount"]),
        np.array([0.2, 0.4, 7.0]),
    )
    metrics.record_batch(5, 3, {"read": 12.0, "model": 3.5}, "fraud-detector", "7")
    metrics.record_lag({("transactions_stream", 0): 42})
    server = serve(metrics.registry, "127.0.0.1", 0)
    try:
        text = requests.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).text
    finally:
        server.shutdown()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    value = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert value[("fraudops_scorer_decisions_total", (("decision", "BLOCK"),))] == 1
    assert value[("fraudops_scorer_decisions_total", (("decision", "APPROVE"),))] == 2
    assert value[("fraudops_scorer_dead_letters_total", (("reason", "unreadable JSON"),))] == 1
    assert value[("fraudops_scorer_records_total", ())] == 5
    assert value[("fraudops_scorer_scored_total", ())] == 3
    assert value[("fraudops_scorer_model_version", (("model", "fraud-detector"),))] == 7
    lag = ("fraudops_scorer_consumer_lag_records", (("partition", "0"), ("topic", "transactions_stream")))
    assert value[lag] == 42
    assert value[("fraudops_scorer_latency_seconds_count", ())] == 3
    assert value[("fraudops_scorer_latency_seconds_bucket", (("le", "5.0"),))] == 2
    assert value[("fraudops_scorer_batch_stage_seconds_count", (("stage", "read"),))] == 1


def test_producer_counters_follow_running_totals() -> None:
    metrics = ProducerMetrics()
    metrics.update(10, 8, 0, 0)
    metrics.update(25, 25, 1, 3)
    metrics.update(25, 25, 1, 3)
    got = _samples(metrics.registry, "fraudops_producer")
    assert got[("fraudops_producer_sent_total", ())] == 25
    assert got[("fraudops_producer_acked_total", ())] == 25
    assert got[("fraudops_producer_failed_total", ())] == 1
    assert got[("fraudops_producer_labels_written_total", ())] == 3
