"""One micro-batch, written: the ``foreachBatch`` body of the scorer.

:func:`fraudops.scoring.batch.score_batch` computes the batch; the store (:mod:`fraudops.scoring.store`)
commits its Postgres tables in one transaction and gives back what Postgres holds for its ids. Those
committed decisions go to ``fraud_predictions``, so a batch that Spark replays after a crash repeats them
and every sink tells the same story. The Kafka outputs are at-least-once: consumers key on the transaction
id (dead letters on their source partition and offset). Faults of the surroundings (Postgres or Kafka
away) are retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fraudops.config.model import Thresholds
from fraudops.monitoring.metrics import ScorerMetrics
from fraudops.scoring.batch import conflicts, dead_letters, prediction_messages, score_batch
from fraudops.scoring.champion import ChampionWatcher
from fraudops.scoring.customers import CustomerWindows
from fraudops.scoring.parse import EventTimeWindow
from fraudops.scoring.store import BatchStore
from fraudops.scoring.terminals import TerminalTable

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class BatchReport:
    batch_id: int
    rows: int = 0
    scored: int = 0
    dead_letters: int = 0
    model_version: str = ""
    model_name: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)


class KafkaOut:
    """Durable Kafka writes (acks=all, idempotent), flushed at the end of each micro-batch."""

    def __init__(self, bootstrap_servers: str) -> None:
        from fraudops.kafka_client import kafka_producer

        self.producer = kafka_producer(bootstrap_servers)
        self._errors: list[Any] = []

    def send(self, topic: str, key: str | None, value: str) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
                return
            except BufferError:  # local queue full: let it drain
                self.producer.poll(0.1)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(err)

    def flush(self, timeout: float = 120.0) -> None:
        left = self.producer.flush(timeout)
        errors, self._errors = self._errors, []
        if left or errors:
            raise KafkaUndelivered(f"Kafka writes not acknowledged: {left} pending, errors {errors[:3]}")


class KafkaUndelivered(RuntimeError):
    """Some of a micro-batch's Kafka writes were not acknowledged (brokers unreachable for a while)."""


def is_transient(exc: BaseException) -> bool:
    """A fault of the surroundings, not of the input: worth retrying the micro-batch, which is idempotent
    (Postgres keyed by transaction id, Kafka outputs at-least-once)."""
    import psycopg2
    from confluent_kafka import KafkaException

    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError | KafkaUndelivered):
        return True
    return isinstance(exc, KafkaException) and bool(exc.args) and exc.args[0].retriable()


class BatchScorer:
    def __init__(
        self,
        watcher: ChampionWatcher,
        customers: CustomerWindows,
        terminals: TerminalTable,
        thresholds: Thresholds,
        store: BatchStore,
        kafka: KafkaOut,
        predictions_topic: str,
        dead_letters_topic: str,
        window: EventTimeWindow,
        report: Callable[[BatchReport], None] | None = None,
        row_at_a_time: bool = False,
        retry_for_s: float = 600.0,
        metrics: ScorerMetrics | None = None,
    ) -> None:
        self.watcher, self.customers, self.terminals = watcher, customers, terminals
        self.thresholds, self.window, self.row_at_a_time = thresholds, window, row_at_a_time
        self.store, self.kafka = store, kafka
        self.predictions_topic, self.dead_letters_topic = predictions_topic, dead_letters_topic
        self.report = report or (lambda r: log.info("%s", r))
        self.retry_for_s = retry_for_s
        self.metrics = metrics

    def __call__(self, batch: Any, batch_id: int) -> None:
        """``foreachBatch`` entry: the Spark micro-batch of Kafka records collected once (Arrow) and
        processed in this (the driver's) process."""
        started = time.perf_counter()
        frame = batch.toPandas()
        read_ms = (time.perf_counter() - started) * 1000
        report = self.process_retrying(frame, batch_id)
        report.timings_ms = {"read": round(read_ms, 1), **report.timings_ms}
        self.report(report)
        if self.metrics is not None:
            self.metrics.record_batch(
                report.rows, report.scored, report.timings_ms, report.model_name, report.model_version
            )

    def process_retrying(self, frame: pd.DataFrame, batch_id: int) -> BatchReport:
        """:meth:`process`, retried with backoff while Postgres or Kafka are away (a restart, a leader
        election) for up to ``retry_for_s``; then the error stops the query and the scorer's restart
        policy takes over, resuming from the checkpoint."""
        from tenacity import (
            Retrying,
            before_sleep_log,
            retry_if_exception,
            stop_after_delay,
            wait_exponential,
        )

        for attempt in Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential(multiplier=0.5, max=30),
            stop=stop_after_delay(self.retry_for_s),
            before_sleep=before_sleep_log(log, logging.WARNING, exc_info=False),
            reraise=True,
        ):
            with attempt:
                return self.process(frame, batch_id)
        raise AssertionError("unreachable: Retrying either returns or reraises")

    def process(self, frame: pd.DataFrame, batch_id: int) -> BatchReport:
        # the one place the model may change: between micro-batches
        loaded = self.watcher.for_batch()
        report = BatchReport(
            batch_id, rows=len(frame), model_version=loaded.info.version, model_name=loaded.info.name
        )
        tick = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal tick
            now = time.perf_counter()
            report.timings_ms[name] = round((now - tick) * 1000, 1)
            tick = now

        batch = score_batch(
            frame,
            self.customers,
            self.terminals,
            loaded,
            self.thresholds,
            self.window,
            _now_ms(),
            self.row_at_a_time,
            lap,
        )
        committed = self.store.commit(
            batch_id,
            batch.events,
            batch.scored,
            records=len(frame),
            dead_letters=len(batch.rejected),
            model_version=batch.model_version,
        )
        # the batch's transactions now count in their customers' windows (a conflicting one never does)
        self.customers.append(batch.events.loc[~committed.conflicts])
        lap("postgres")
        rejected = pd.concat(
            [batch.rejected, conflicts(batch.parsed.loc[committed.conflicts])], ignore_index=True
        )
        # what Postgres holds, not this attempt's scores: a replayed batch repeats its first decisions
        produced = dict(zip(batch.events["transaction_id"], batch.produced_ms, strict=True))
        keys, values = prediction_messages(committed.predictions, produced, batch_id)
        for key, value in zip(keys, values, strict=True):
            self.kafka.send(self.predictions_topic, key, value)
        report.scored = len(committed.predictions)
        if len(rejected):
            for record in dead_letters(rejected, _now_ms()):
                self.kafka.send(self.dead_letters_topic, None, record)
            report.dead_letters = len(rejected)
        self.kafka.flush()
        lap("kafka")
        if self.metrics is not None:
            # end to end: from each committed event's Kafka record time to its prediction acknowledged
            sent_ms = batch.produced_ms[~committed.conflicts]
            self.metrics.record_outputs(
                committed.predictions["decision"], rejected["reason"], (_now_ms() - sent_ms) / 1000
            )
        return report
