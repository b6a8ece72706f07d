"""Kafka records -> validated events, with the one event schema (:func:`fraudops.schema.validate_event`).

Every record comes out: a good one with its normalized fields, a bad one with the reason and its
original payload, so nothing is dropped silently and a bad event never stops the query. Times travel
through Spark as epoch microseconds (UTC), so no session time zone can shift them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudops.config.scorer import ScorerSettings
from fraudops.schema import printable, validate_event

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)

# Kafka coordinates, the original payload, the verdict and the normalized event
PARSED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("topic", "string"),
    ("partition", "int"),
    ("offset", "bigint"),
    ("kafka_ts_ms", "bigint"),
    ("payload", "binary"),
    ("ok", "boolean"),
    ("reason", "string"),
    ("transaction_id", "string"),
    ("tx_time_us", "bigint"),
    ("customer_id", "bigint"),
    ("terminal_id", "bigint"),
    ("tx_amount", "double"),
)


# a reason is short and printable whatever the record held
MAX_REASON_CHARS = 500
# the window's defaults are the settings' defaults (``scorer.max_event_*``)
_DEFAULTS = ScorerSettings()


@dataclass(frozen=True)
class EventTimeWindow:
    """How far an event's time may lie from its Kafka record's time. Outside it the event is a dead letter:
    one far-off event would otherwise push a card's window history out (the state keeps the newest 30
    days) or skew the terminal features."""

    max_ahead: timedelta = timedelta(hours=_DEFAULTS.max_event_ahead_hours)
    max_behind: timedelta = timedelta(days=_DEFAULTS.max_event_behind_days)

    @classmethod
    def of(cls, scorer: ScorerSettings) -> EventTimeWindow:
        return cls(
            timedelta(hours=scorer.max_event_ahead_hours), timedelta(days=scorer.max_event_behind_days)
        )

    def problem(self, event_time: datetime, kafka_ts_ms: int | None) -> str:
        if kafka_ts_ms is None:
            return "the Kafka record has no timestamp to check the event time against"
        record = _EPOCH + timedelta(milliseconds=kafka_ts_ms)
        if event_time > record + self.max_ahead:
            return f"event time {event_time} is over {self.max_ahead} ahead of its Kafka record ({record})"
        if event_time < record - self.max_behind:
            return f"event time {event_time} is over {self.max_behind} behind its Kafka record ({record})"
        return ""


def to_epoch_us(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def _verdict(payload: bytes | None, kafka_ts_ms: int | None, window: EventTimeWindow) -> dict[str, Any]:
    """The parsed columns of one record: its normalized event, or the reason it is a dead letter."""
    if not payload:
        return _dead("empty message")
    check = validate_event(payload)
    if not check.ok or check.event is None:
        return _dead(check.reason)
    event = check.event
    late_or_early = window.problem(event["tx_datetime"], kafka_ts_ms)
    if late_or_early:
        return _dead(late_or_early)
    return {
        "ok": True,
        "reason": None,
        "transaction_id": event["transaction_id"],
        "tx_time_us": to_epoch_us(event["tx_datetime"]),
        "customer_id": event["customer_id"],
        "terminal_id": event["terminal_id"],
        "tx_amount": event["tx_amount"],
    }


def _dead(reason: str) -> dict[str, Any]:
    return {
        "ok": False,
        "reason": printable(reason, MAX_REASON_CHARS),
        "transaction_id": None,
        "tx_time_us": None,
        "customer_id": None,
        "terminal_id": None,
        "tx_amount": None,
    }


def validate_frame(records: pd.DataFrame, window: EventTimeWindow | None = None) -> pd.DataFrame:
    """Kafka records (value, topic, partition, offset, kafka_ts_ms) -> :data:`PARSED_COLUMNS` rows.

    Never raises for a record: whatever fails while reading one makes that record a dead letter.
    """
    window = window or EventTimeWindow()
    rows: list[dict[str, Any]] = []
    for value, topic, partition, offset, ts in zip(
        records["value"],
        records["topic"],
        records["partition"],
        records["offset"],
        records["kafka_ts_ms"],
        strict=True,
    ):
        payload = bytes(value) if value is not None else None
        kafka_ts_ms = None if pd.isna(ts) else int(ts)
        try:
            verdict = _verdict(payload, kafka_ts_ms, window)
        except Exception as exc:  # noqa: BLE001 -- a record's failure is the record's, never the query's
            verdict = _dead(f"unreadable: {type(exc).__name__}: {exc}")
        rows.append(
            {
                "topic": topic,
                "partition": int(partition),
                "offset": int(offset),
                "kafka_ts_ms": kafka_ts_ms,
                "payload": payload,
                **verdict,
            }
        )
    # typed column by column: a frame built from the rows would pass ids through float64 next to a null,
    # and 2**63 - 1 does not survive that
    columns: dict[str, Any] = {}
    for name, kind in PARSED_COLUMNS:
        values = [row[name] for row in rows]
        if kind in ("int", "bigint"):
            columns[name] = pd.array(values, dtype="Int64")
        elif kind == "double":
            columns[name] = pd.array([float("nan") if v is None else v for v in values], dtype="float64")
        else:
            columns[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


def kafka_records(source: DataFrame) -> DataFrame:
    """The Kafka source's columns the scorer reads, record time as epoch milliseconds; the parsing itself
    happens on the collected micro-batch (:func:`validate_frame`), with no Python worker per partition."""
    from pyspark.sql import functions as F

    return source.select(
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.unix_millis(F.col("timestamp")).alias("kafka_ts_ms"),
    )
