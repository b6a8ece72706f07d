"""The scorer's Spark transforms on static data (files, no Kafka): parse -> customer state gives the batch
features, and bad records pass through with their reason."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pandas as pd
import pytest

from fraudops.features import build_features
from fraudops.schema import event_to_json
from fraudops.scoring.parse import parse_events
from fraudops.scoring.state import (
    CUSTOMER_FEATURES,
    customer_state_operator,
    state_ttl_ms,
    with_customer_features,
)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("unit-scoring")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        .getOrCreate()
    )
    yield session
    session.stop()


def _payloads(tx: pd.DataFrame) -> list[bytes]:
    return [event_to_json(row).encode() for row in tx.to_dict("records")]


def _record_time(payload: bytes) -> pd.Timestamp:
    """A live producer sends an event when it happens: the record's time is the event's (the scorer
    dead-letters events far from their record's time)."""
    try:
        return pd.Timestamp(json.loads(payload)["tx_datetime"]).tz_convert(None)
    except (ValueError, KeyError, TypeError):
        return pd.Timestamp("2018-04-01")


def _records(spark, payloads: list[bytes], first_offset: int = 0):
    """Kafka-shaped records (the columns the scorer reads from the Kafka source)."""
    return spark.createDataFrame(
        pd.DataFrame(
            {
                "value": payloads,
                "topic": "transactions_stream",
                "partition": 0,
                "offset": np.arange(first_offset, first_offset + len(payloads), dtype=np.int64),
                "timestamp": [_record_time(p) for p in payloads],
            }
        )
    )


def _to_memory(frame, name: str, checkpoint, **trigger):
    """The state operator only runs in a streaming query: write it to an in-memory table."""
    return (
        frame.writeStream.format("memory")
        .queryName(name)
        .outputMode("update")
        .option("checkpointLocation", str(checkpoint))
        .trigger(**trigger)
        .start()
    )


def _drop_into(folder, records, name: str) -> None:
    """Write ``records`` elsewhere and move the finished Parquet files in: the stream sees whole files."""
    staging = folder.parent / f"staging-{name}"
    records.write.parquet(str(staging))
    folder.mkdir(exist_ok=True)
    for part in staging.glob("*.parquet"):
        part.rename(folder / f"{name}-{part.name}")


def test_state_ttl_may_not_cut_into_a_window() -> None:
    assert state_ttl_ms(31) == 31 * 86_400_000
    with pytest.raises(ValueError, match="longest customer window"):
        state_ttl_ms(7)


def test_idle_customers_state_expires(spark, small_transactions, tmp_path) -> None:
    customers = small_transactions["customer_id"].unique()[:3]
    first = small_transactions[small_transactions["customer_id"].isin(customers[:2])].iloc[:40]
    later = small_transactions[small_transactions["customer_id"] == customers[2]].iloc[:10]
    first_records = _records(spark, _payloads(first))
    _drop_into(tmp_path / "records", first_records, "a")
    source = spark.readStream.schema(first_records.schema).parquet(str(tmp_path / "records"))
    state = customer_state_operator(parse_events(source), ttl_ms=1_000)
    query = _to_memory(state, "expiring", tmp_path / "checkpoint", processingTime="200 milliseconds")
    try:
        query.processAllAvailable()
        assert query.lastProgress["stateOperators"][0]["numRowsTotal"] == 2
        time.sleep(2.5)  # both customers idle for longer than the TTL
        _drop_into(tmp_path / "records", _records(spark, _payloads(later), first_offset=1_000), "b")
        query.processAllAvailable()
        state = query.lastProgress["stateOperators"][0]
        # the idle customers were dropped, the new one kept
        assert state["numRowsTotal"] == 1 and state["numRowsRemoved"] == 2
    finally:
        query.stop()
    assert len(spark.table("expiring").toPandas()) == len(first) + len(later)


def test_parse_and_state_on_a_static_frame(spark, small_transactions, tmp_path) -> None:
    tx = small_transactions.iloc[:3000]
    payloads = _payloads(tx) + [b"{broken", json.dumps({"transaction_id": "z"}).encode()]
    records = _records(spark, payloads)
    records.write.parquet(str(tmp_path / "records"))
    source = spark.readStream.schema(records.schema).parquet(str(tmp_path / "records"))
    featured = with_customer_features(parse_events(source), ttl_days=31)
    query = _to_memory(featured, "scored_static", tmp_path / "checkpoint", availableNow=True)
    query.awaitTermination(120)
    out = spark.table("scored_static").toPandas()
    assert len(out) == len(payloads)
    bad = out[~out["ok"]]
    assert sorted(bad["offset"]) == [3000, 3001] and bad["reason"].str.len().gt(0).all()
    good = out[out["ok"]].set_index("transaction_id")
    expected = build_features(tx).set_index("transaction_id").loc[good.index]
    for name in CUSTOMER_FEATURES:
        np.testing.assert_allclose(good[name], expected[name], rtol=1e-9, err_msg=name)
