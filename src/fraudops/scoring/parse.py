"""Kafka records -> validated events, with the one event schema (:func:`fraudops.schema.validate_event`).

Every record comes out: a good one with its normalized fields, a bad one with the reason and its
original payload, so nothing is dropped silently and a bad event never stops the query. Times travel
through Spark as epoch microseconds (UTC), so no session time zone can shift them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudops.schema import validate_event

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)

# Kafka coordinates, the original payload, the verdict, the normalized event and the state key
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
    ("state_key", "bigint"),
)
PARSED_DDL = ", ".join(f"`{name}` {kind}" for name, kind in PARSED_COLUMNS)
# bad events share a few negative state keys (customer ids are >= 0), so they pass through the state step
# spread over partitions without touching any customer's state
BAD_KEY_BUCKETS = 4


def to_epoch_us(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def validate_frame(records: pd.DataFrame) -> pd.DataFrame:
    """Kafka records (value, topic, partition, offset, kafka_ts_ms) -> :data:`PARSED_COLUMNS` rows."""
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
        row: dict[str, Any] = {
            "topic": topic,
            "partition": int(partition),
            "offset": int(offset),
            "kafka_ts_ms": None if pd.isna(ts) else int(ts),
            "payload": payload,
        }
        check = validate_event(payload) if payload else None
        if check is not None and check.ok and check.event is not None:
            event = check.event
            row.update(
                ok=True,
                reason=None,
                transaction_id=event["transaction_id"],
                tx_time_us=to_epoch_us(event["tx_datetime"]),
                customer_id=event["customer_id"],
                terminal_id=event["terminal_id"],
                tx_amount=event["tx_amount"],
                state_key=event["customer_id"],
            )
        else:
            row.update(
                ok=False,
                reason=check.reason if check is not None else "empty message",
                transaction_id=None,
                tx_time_us=None,
                customer_id=None,
                terminal_id=None,
                tx_amount=None,
                state_key=-1 - int(offset) % BAD_KEY_BUCKETS,
            )
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[name for name, _ in PARSED_COLUMNS])
    for name in ("tx_time_us", "customer_id", "terminal_id"):
        frame[name] = frame[name].astype("Int64")
    frame["tx_amount"] = frame["tx_amount"].astype("float64")
    return frame


def _validate_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        yield validate_frame(batch)


def parse_events(records: DataFrame) -> DataFrame:
    """Kafka source DataFrame -> one row per record with :data:`PARSED_COLUMNS`."""
    from pyspark.sql import functions as F

    return records.select(
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.unix_millis(F.col("timestamp")).alias("kafka_ts_ms"),
    ).mapInPandas(_validate_batches, PARSED_DDL)
