"""One micro-batch, scored and written: the ``foreachBatch`` body of the scorer.

Bad records and conflicting duplicates become dead letters with their reason; the rest are scored
together and handed to the store (:mod:`fraudops.scoring.store`), which commits the batch's Postgres
tables in one transaction and gives back what Postgres holds for its ids. Those committed decisions go to
``fraud_predictions``, so a batch that Spark replays after a crash repeats them and every sink tells the
same story. The Kafka outputs are at-least-once: consumers key on the transaction id (dead letters on their
source partition and offset). Faults of the surroundings (Postgres or Kafka away) are retried.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fraudops.decisions import decide
from fraudops.features import FEATURE_NAMES, transaction_features
from fraudops.model_config import Thresholds
from fraudops.schema import EVENT_COLUMNS, printable
from fraudops.scoring.models import ChampionWatcher, LoadedModel
from fraudops.scoring.state import CUSTOMER_FEATURES
from fraudops.scoring.store import CONFLICT_REASON, BatchStore, split_batch_duplicates
from fraudops.scoring.terminals import TerminalTable

log = logging.getLogger(__name__)

_US_PER_SECOND = 1_000_000
# a dead letter's encoded JSON stays under this, well inside what the broker and the client accept (~1 MB):
# a record that cannot be sent would fail the micro-batch
MAX_DEAD_LETTER_BYTES = 512 * 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- pure transforms ---------------------------------------------------------------------------------------


def dead_letters(bad: pd.DataFrame, failed_at_ms: int) -> list[str]:
    """Dead-letter records as JSON: original payload (UTF-8, else base64), reason, and where it came from.

    Each is at most :data:`MAX_DEAD_LETTER_BYTES` encoded, whatever the payload: a payload that would
    make it larger is cut (``payload_truncated``), so a dead letter can always be sent.
    """
    return [
        _dead_letter(
            {
                "reason": row.reason,
                "source_topic": row.topic,
                "source_partition": int(row.partition),
                "source_offset": int(row.offset),
                "produced_at_ms": None if pd.isna(row.kafka_ts_ms) else int(row.kafka_ts_ms),
                "failed_at_ms": failed_at_ms,
            },
            bytes(row.payload) if row.payload is not None else b"",
        )
        for row in bad.itertuples(index=False)
    ]


def _dead_letter(record: dict[str, Any], raw: bytes) -> str:
    keep = len(raw)
    while True:
        part = raw[:keep]
        try:
            payload, encoding = part.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            payload, encoding = base64.b64encode(part).decode("ascii"), "base64"
        text = json.dumps(
            {**record, "payload": payload, "payload_encoding": encoding, "payload_truncated": keep < len(raw)}
        )
        if len(text) <= MAX_DEAD_LETTER_BYTES:  # ASCII: json.dumps escapes every other character
            return text
        # escapes take 1 to 12 characters per payload byte: shrink in proportion, with room for the rest
        keep = max(0, min(keep - 1, int(keep * (MAX_DEAD_LETTER_BYTES - 4096) / len(text))))


def events_frame(good: pd.DataFrame) -> pd.DataFrame:
    """Valid parsed rows -> the event columns of the schema (``tx_datetime`` naive UTC)."""
    events = pd.DataFrame(
        {
            "transaction_id": good["transaction_id"].astype(str).to_numpy(),
            "tx_datetime": pd.to_datetime(good["tx_time_us"].to_numpy(np.int64), unit="us"),
            "customer_id": good["customer_id"].to_numpy(np.int64),
            "terminal_id": good["terminal_id"].to_numpy(np.int64),
            "tx_amount": good["tx_amount"].to_numpy(np.float64),
        }
    )
    return events.loc[:, list(EVENT_COLUMNS)]


def assemble_features(good: pd.DataFrame, terminal: dict[str, np.ndarray]) -> pd.DataFrame:
    """:data:`FEATURE_NAMES` of the valid rows: per-transaction ones, the customer windows from the state
    step and the terminal ones from the terminal table."""
    times = pd.to_datetime(good["tx_time_us"].to_numpy(np.int64), unit="us")
    columns: dict[str, np.ndarray] = dict(transaction_features(times, good["tx_amount"].to_numpy(np.float64)))
    for name in CUSTOMER_FEATURES:
        columns[name] = good[name].to_numpy(np.float64)
    columns.update(terminal)
    return pd.DataFrame({name: columns[name] for name in FEATURE_NAMES})


def score(
    model: LoadedModel, features: pd.DataFrame, thresholds: Thresholds, row_at_a_time: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The whole micro-batch through the native booster at once; scores and decisions. ``row_at_a_time``
    calls the booster once per row instead: the baseline the vectorized path is measured against."""
    if features.empty:
        return np.empty(0), np.empty(0, dtype=object)
    matrix = features.to_numpy(np.float32)
    if row_at_a_time:
        raw = np.concatenate([np.asarray(model.model.predict(matrix[i : i + 1])) for i in range(len(matrix))])
    else:
        raw = np.asarray(model.model.predict(matrix))
    scores = np.clip(raw.astype(np.float64), 0, 1)
    return scores, decide(scores, thresholds)


def _conflicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Parsed rows refused as conflicting duplicates, with that reason (for :func:`dead_letters`)."""
    return rows.assign(reason=[CONFLICT_REASON.format(id=printable(i, 80)) for i in rows["transaction_id"]])


# -- the batch -------------------------------------------------------------------------------------------


@dataclass
class BatchReport:
    batch_id: int
    rows: int = 0
    scored: int = 0
    dead_letters: int = 0
    model_version: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)


class KafkaOut:
    """Durable Kafka writes (acks=all, idempotent), flushed at the end of each micro-batch."""

    def __init__(self, bootstrap_servers: str) -> None:
        from confluent_kafka import Producer

        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "compression.type": "lz4",
            }
        )
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
        terminals: TerminalTable,
        thresholds: Thresholds,
        store: BatchStore,
        kafka: KafkaOut,
        predictions_topic: str,
        dead_letters_topic: str,
        report: Callable[[BatchReport], None] | None = None,
        row_at_a_time: bool = False,
        retry_for_s: float = 600.0,
    ) -> None:
        self.watcher, self.terminals, self.thresholds = watcher, terminals, thresholds
        self.row_at_a_time = row_at_a_time
        self.store, self.kafka = store, kafka
        self.predictions_topic, self.dead_letters_topic = predictions_topic, dead_letters_topic
        self.report = report or (lambda r: log.info("%s", r))
        self.retry_for_s = retry_for_s

    def __call__(self, batch: Any, batch_id: int) -> None:
        """``foreachBatch`` entry: the Spark micro-batch collected once (Arrow) and processed."""
        started = time.perf_counter()
        frame = batch.toPandas()
        collect_ms = (time.perf_counter() - started) * 1000
        report = self.process_retrying(frame, batch_id)
        report.timings_ms["collect"] = round(collect_ms, 1)
        self.report(report)

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
        report = BatchReport(batch_id, rows=len(frame), model_version=loaded.info.version)
        tick = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal tick
            now = time.perf_counter()
            report.timings_ms[name] = round((now - tick) * 1000, 1)
            tick = now

        ok = frame["ok"].fillna(False).astype(bool).to_numpy()
        rejected = [frame.loc[~ok]]
        # in arrival order, so that of two events with one id the first sent is kept, as across batches
        good = frame.loc[ok].sort_values(["kafka_ts_ms", "partition", "offset"], kind="stable")
        good = good.reset_index(drop=True)
        first, conflicting = split_batch_duplicates(events_frame(good))
        rejected.append(_conflicts(good.loc[conflicting]))
        good = good.loc[first].reset_index(drop=True)
        events = events_frame(good)
        produced_ms = good["kafka_ts_ms"].to_numpy(np.float64)
        info = loaded.info
        if len(good):
            seconds = good["tx_time_us"].to_numpy(np.int64) // _US_PER_SECOND
            self.terminals.refresh(int(seconds.min()), int(seconds.max()))
            terminal = self.terminals.features(good["terminal_id"].to_numpy(np.int64), seconds)
            features = assemble_features(good, terminal)
            lap("features")
            scores, decisions = score(loaded, features, self.thresholds, self.row_at_a_time)
            lap("model")
            feature_json = features.to_json(orient="records", lines=True, double_precision=15).splitlines()
        else:  # only dead letters: the batch is still recorded
            scores, decisions, feature_json = np.empty(0), np.empty(0, dtype=object), []
        scored = events.assign(
            score=scores,
            decision=decisions,
            model_name=info.name,
            model_version=info.version,
            features=feature_json,
            latency_ms=_now_ms() - produced_ms,
        )
        committed = self.store.commit(
            batch_id,
            events,
            scored,
            records=len(frame),
            dead_letters=sum(len(r) for r in rejected),
            model_version=info.version,
        )
        lap("postgres")
        rejected.append(_conflicts(good.loc[committed.conflicts]))
        # what Postgres holds, not this attempt's scores: a replayed batch repeats its first decisions
        produced = dict(zip(good["transaction_id"], produced_ms, strict=True))
        for row in committed.predictions.itertuples(index=False):
            sent_ms = produced.get(row.transaction_id, np.nan)
            self.kafka.send(
                self.predictions_topic,
                row.transaction_id,
                json.dumps(
                    {
                        "transaction_id": row.transaction_id,
                        "customer_id": int(row.customer_id),
                        "score": float(row.score),
                        "decision": str(row.decision),
                        "model_name": row.model_name,
                        "model_version": row.model_version,
                        "batch_id": batch_id,
                        "produced_at_ms": None if np.isnan(sent_ms) else int(sent_ms),
                        "scored_at_ms": int(row.scored_at.timestamp() * 1000),
                    }
                ),
            )
        report.scored = len(committed.predictions)
        bad = pd.concat(rejected, ignore_index=True)
        if len(bad):
            for record in dead_letters(bad, _now_ms()):
                self.kafka.send(self.dead_letters_topic, None, record)
            report.dead_letters = len(bad)
        self.kafka.flush()
        lap("kafka")
        return report
