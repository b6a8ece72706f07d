"""Prometheus metrics of our own processes: the scorer's and the producer's.

Each process owns one :class:`~prometheus_client.CollectorRegistry` (no global state, so tests build as
many as they like) and serves it with :func:`serve`. The scorer records whole micro-batches at once: the
end-to-end latency histogram takes a batch's latencies as one array (:class:`BulkHistogram`), so the hot
path adds a few vectorized numpy calls per micro-batch, never a Python call per transaction.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from fraudops.decisions import DECISIONS

# end-to-end latency (Kafka record time -> prediction on Kafka), seconds
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# one stage of one micro-batch, seconds
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# a dead letter's reason is free text (it may quote the record): its label is the text before the first ':'
MAX_REASON_LABEL = 40

# every metric name our processes export (Prometheus adds _total, _bucket, _sum, _count as it exposes them)
SCORER_RECORDS = "fraudops_scorer_records"
SCORER_SCORED = "fraudops_scorer_scored"
SCORER_BATCHES = "fraudops_scorer_batches"
SCORER_DEAD_LETTERS = "fraudops_scorer_dead_letters"
SCORER_DECISIONS = "fraudops_scorer_decisions"
SCORER_LATENCY = "fraudops_scorer_latency_seconds"
SCORER_STAGE = "fraudops_scorer_batch_stage_seconds"
SCORER_MODEL_VERSION = "fraudops_scorer_model_version"
SCORER_LAG = "fraudops_scorer_consumer_lag_records"
SCORER_REFUSED = "fraudops_scorer_champion_refused"
PRODUCER_SENT = "fraudops_producer_sent"
PRODUCER_ACKED = "fraudops_producer_acked"
PRODUCER_FAILED = "fraudops_producer_failed"
PRODUCER_LABELS = "fraudops_producer_labels_written"


class BulkHistogram(Collector):
    """A histogram that takes many observations in one call (numpy), for per-transaction figures."""

    def __init__(self, name: str, documentation: str, buckets: Iterable[float]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = np.asarray(sorted(buckets), dtype=np.float64)
        # the last slot counts what is above every bound (the +Inf bucket)
        self._counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if not len(values):
            return
        # the first bound >= v is v's bucket (Prometheus buckets are upper-inclusive)
        slots = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self._counts))
        with self._lock:
            self._counts += slots
            self._sum += float(values.sum())

    def collect(self) -> Iterable[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        # bounds spelled as prometheus_client spells them (1.0, not 1), so series match its histograms'
        buckets = [(floatToGoString(b), int(c)) for b, c in zip(self.bounds, cumulative[:-1], strict=True)]
        buckets.append(("+Inf", int(cumulative[-1])))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, total)
        yield family


def reason_label(reason: str) -> str:
    """A dead letter's reason as a label of bounded cardinality: its kind, not the text it quotes."""
    return str(reason).split(":", 1)[0].strip()[:MAX_REASON_LABEL] or "unknown"


class ScorerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records = Counter(SCORER_RECORDS, "Kafka records read by the scorer", registry=r)
        self.scored = Counter(SCORER_SCORED, "transactions scored and committed", registry=r)
        self.batches = Counter(SCORER_BATCHES, "micro-batches completed", registry=r)
        self.dead_letters = Counter(
            SCORER_DEAD_LETTERS, "records sent to the dead-letter topic", ["reason"], registry=r
        )
        self.decisions = Counter(SCORER_DECISIONS, "decisions committed", ["decision"], registry=r)
        # every decision exists from the start, at 0: a rate of BLOCK with no BLOCK yet is 0, not absent
        for decision in DECISIONS:
            self.decisions.labels(decision)
        self.stage = Histogram(
            SCORER_STAGE, "time of each stage of a micro-batch", ["stage"], buckets=STAGE_BUCKETS, registry=r
        )
        self.model_version = Gauge(
            SCORER_MODEL_VERSION, "registry version of the model in use", ["model"], registry=r
        )
        self.lag = Gauge(
            SCORER_LAG,
            "records on the source topic not yet read by the scorer",
            ["topic", "partition"],
            registry=r,
        )
        self.refused = Counter(
            SCORER_REFUSED,
            "new champions the scorer refused to load (it kept the model in use)",
            ["version", "reason"],
            registry=r,
        )
        self.latency = BulkHistogram(
            SCORER_LATENCY, "end to end: Kafka record time to prediction sent", LATENCY_BUCKETS
        )
        r.register(self.latency)

    def record_outputs(self, decisions: Iterable[str], reasons: Iterable[str], latency_s: np.ndarray) -> None:
        """What one micro-batch committed and sent: decisions, dead letters, latencies."""
        for decision, n in _counts(decisions).items():
            self.decisions.labels(decision).inc(n)
        for reason, n in _counts([reason_label(r) for r in reasons]).items():
            self.dead_letters.labels(reason).inc(n)
        self.latency.observe_many(latency_s)

    def record_batch(
        self, rows: int, scored: int, timings_ms: Mapping[str, float], model: str, version: str
    ) -> None:
        self.batches.inc()
        self.records.inc(rows)
        self.scored.inc(scored)
        for stage, ms in timings_ms.items():
            self.stage.labels(stage).observe(ms / 1000)
        try:
            self.model_version.labels(model).set(float(version))
        except ValueError:  # a version that is not a number (a local model in a test) has no gauge value
            pass

    def record_refused(self, version: str, reason: str) -> None:
        self.refused.labels(version, reason).inc()

    def record_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        for (topic, partition), records in lag.items():
            self.lag.labels(topic, str(partition)).set(records)


def _counts(values: Iterable[str]) -> dict[str, int]:
    if isinstance(values, pd.Series):  # a micro-batch's decisions: counted in C
        return {str(k): int(v) for k, v in values.value_counts().items()}
    return dict(collections.Counter(values))


def _offsets(value: Any) -> dict[str, dict[str, int]]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def partition_lag(sources: Iterable[Any]) -> dict[tuple[str, int], int]:
    """Per (topic, partition): the latest offset on the broker minus the offset the query has read to,
    from a Spark streaming progress's Kafka sources (``endOffset`` and ``latestOffset``, dicts or JSON)."""
    lag: dict[tuple[str, int], int] = {}
    for source in sources:
        get = source.get if isinstance(source, dict) else lambda k, s=source: getattr(s, k, None)
        end, latest = _offsets(get("endOffset")), _offsets(get("latestOffset"))
        for topic, partitions in latest.items():
            for partition, offset in partitions.items():
                read = end.get(topic, {}).get(partition, offset)
                lag[(topic, int(partition))] = max(0, int(offset) - int(read))
    return lag


class ProducerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sent = Counter(PRODUCER_SENT, "events handed to the Kafka client", registry=r)
        self.acked = Counter(PRODUCER_ACKED, "events the brokers acknowledged", registry=r)
        self.failed = Counter(PRODUCER_FAILED, "events the brokers did not acknowledge", registry=r)
        self.labels = Counter(PRODUCER_LABELS, "delayed fraud labels written", registry=r)
        self._last = (0, 0, 0, 0)

    def update(self, sent: int, acked: int, failed: int, labels: int) -> None:
        """The producer's running totals (its progress callback): counters advance by the difference."""
        now = (sent, acked, failed, labels)
        for counter, before, after in zip(
            (self.sent, self.acked, self.failed, self.labels), self._last, now, strict=True
        ):
            if after > before:
                counter.inc(after - before)
        self._last = now


def serve(registry: CollectorRegistry, host: str, port: int) -> Any:
    """Serve ``registry`` on http://host:port/metrics from a daemon thread; returns the server."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


# metrics of the third-party exporters that the Grafana dashboards read, by scrape job (the dashboards'
# test accepts them; tests/integration/test_monitoring.py finds each on the running stack)
THIRD_PARTY_METRICS = {
    "postgres": ("pg_stat_database_numbackends",),
    "redis": ("redis_memory_used_bytes",),
    "minio": ("minio_cluster_nodes_online_total",),
    "flower": ("flower_worker_online",),
    # requests of the platform exporter and the scorer keep it present
    "mlflow": ("mlflow_http_request_total",),
    # Airflow's StatsD name with no mapping rule: its dotted name
    "airflow": ("airflow_scheduler_heartbeat",),
}

EXPORTED_METRICS = (
    SCORER_RECORDS,
    SCORER_SCORED,
    SCORER_BATCHES,
    SCORER_DEAD_LETTERS,
    SCORER_DECISIONS,
    SCORER_LATENCY,
    SCORER_STAGE,
    SCORER_MODEL_VERSION,
    SCORER_LAG,
    SCORER_REFUSED,
    PRODUCER_SENT,
    PRODUCER_ACKED,
    PRODUCER_FAILED,
    PRODUCER_LABELS,
)
