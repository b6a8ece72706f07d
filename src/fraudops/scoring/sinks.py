"""One micro-batch, scored and written: the ``foreachBatch`` body of the scorer.

Postgres is written with inserts keyed by transaction id (``ON CONFLICT DO NOTHING``), so a batch that
Spark replays after a crash adds nothing: each transaction has exactly one row in
``transactions_with_score``, stamped with the model version that scored it first. The Kafka outputs
(``fraud_predictions``, ``dead_letters``) are at-least-once: consumers key on the transaction id.
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
from fraudops.schema import EVENT_COLUMNS
from fraudops.scoring.models import ChampionWatcher, LoadedModel
from fraudops.scoring.state import CUSTOMER_FEATURES
from fraudops.scoring.terminals import TerminalTable

log = logging.getLogger(__name__)

_US_PER_SECOND = 1_000_000
# a dead letter carries at most this much of the original payload (a Kafka message is capped at ~1 MB)
MAX_DEAD_LETTER_PAYLOAD = 256 * 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- pure transforms ---------------------------------------------------------------------------------------


def dead_letters(bad: pd.DataFrame, failed_at_ms: int) -> list[dict[str, Any]]:
    """Dead-letter records: original payload (UTF-8, else base64), reason, and where it came from."""
    out = []
    for row in bad.itertuples(index=False):
        raw = bytes(row.payload) if row.payload is not None else b""
        truncated = len(raw) > MAX_DEAD_LETTER_PAYLOAD
        raw = raw[:MAX_DEAD_LETTER_PAYLOAD]
        try:
            payload, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            payload, encoding = base64.b64encode(raw).decode("ascii"), "base64"
        out.append(
            {
                "reason": row.reason,
                "payload": payload,
                "payload_encoding": encoding,
                "payload_truncated": truncated,
                "source_topic": row.topic,
                "source_partition": int(row.partition),
                "source_offset": int(row.offset),
                "produced_at_ms": None if pd.isna(row.kafka_ts_ms) else int(row.kafka_ts_ms),
                "failed_at_ms": failed_at_ms,
            }
        )
    return out


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
            raise RuntimeError(f"Kafka writes not acknowledged: {left} pending, errors {errors[:3]}")


class BatchScorer:
    def __init__(
        self,
        watcher: ChampionWatcher,
        terminals: TerminalTable,
        thresholds: Thresholds,
        write: Callable[[str, pd.DataFrame], int],
        kafka: KafkaOut,
        predictions_topic: str,
        dead_letters_topic: str,
        report: Callable[[BatchReport], None] | None = None,
        row_at_a_time: bool = False,
    ) -> None:
        self.watcher, self.terminals, self.thresholds = watcher, terminals, thresholds
        self.row_at_a_time = row_at_a_time
        self.write, self.kafka = write, kafka
        self.predictions_topic, self.dead_letters_topic = predictions_topic, dead_letters_topic
        self.report = report or (lambda r: log.info("%s", r))

    def __call__(self, batch: Any, batch_id: int) -> None:
        """``foreachBatch`` entry: the Spark micro-batch collected once (Arrow) and processed."""
        started = time.perf_counter()
        frame = batch.toPandas()
        collect_ms = (time.perf_counter() - started) * 1000
        report = self.process(frame, batch_id)
        report.timings_ms["collect"] = round(collect_ms, 1)
        self.report(report)

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
        bad = frame.loc[~ok]
        if len(bad):
            for record in dead_letters(bad, _now_ms()):
                self.kafka.send(self.dead_letters_topic, None, json.dumps(record))
            report.dead_letters = len(bad)
        good = frame.loc[ok].drop_duplicates("transaction_id").reset_index(drop=True)
        if len(good):
            events = events_frame(good)
            self.write("transactions_raw", events)
            lap("raw")
            seconds = good["tx_time_us"].to_numpy(np.int64) // _US_PER_SECOND
            self.terminals.refresh(int(seconds.min()), int(seconds.max()))
            terminal = self.terminals.features(good["terminal_id"].to_numpy(np.int64), seconds)
            features = assemble_features(good, terminal)
            lap("features")
            scores, decisions = score(loaded, features, self.thresholds, self.row_at_a_time)
            lap("model")
            scored_at_ms = _now_ms()
            produced_ms = good["kafka_ts_ms"].to_numpy(np.float64)
            latency_ms = scored_at_ms - produced_ms
            info = loaded.info
            scored = events.assign(
                score=scores,
                decision=decisions,
                model_name=info.name,
                model_version=info.version,
                features=features.to_json(orient="records", lines=True, double_precision=15).splitlines(),
                latency_ms=latency_ms,
            )
            self.write("transactions_with_score", scored)
            alerts = scored.loc[scored["decision"] != "APPROVE", [*EVENT_COLUMNS, "score", "decision"]]
            self.write("fraud_alerts", alerts.assign(model_name=info.name, model_version=info.version))
            lap("postgres")
            for i, tx_id in enumerate(events["transaction_id"]):
                self.kafka.send(
                    self.predictions_topic,
                    tx_id,
                    json.dumps(
                        {
                            "transaction_id": tx_id,
                            "customer_id": int(events["customer_id"].iat[i]),
                            "score": float(scores[i]),
                            "decision": str(decisions[i]),
                            "model_name": info.name,
                            "model_version": info.version,
                            "batch_id": batch_id,
                            "produced_at_ms": None if np.isnan(produced_ms[i]) else int(produced_ms[i]),
                            "scored_at_ms": scored_at_ms,
                        }
                    ),
                )
            report.scored = len(good)
        self.kafka.flush()
        lap("kafka")
        return report
