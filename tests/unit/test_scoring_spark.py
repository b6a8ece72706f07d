"""The scorer's Spark transforms on static data (files, no Kafka): parse -> customer state gives the batch
features, and bad records pass through with their reason."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

from fraudops.features import build_features
from fraudops.schema import event_to_json
from fraudops.scoring.parse import parse_events
from fraudops.scoring.state import CUSTOMER_FEATURES, with_customer_features


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
        .getOrCreate()
    )
    yield session
    session.stop()


def test_parse_and_state_on_a_static_frame(spark, small_transactions, tmp_path) -> None:
    tx = small_transactions.iloc[:3000]
    payloads = [event_to_json(row).encode() for row in tx.to_dict("records")]
    payloads += [b"{broken", json.dumps({"transaction_id": "z"}).encode()]
    records = spark.createDataFrame(
        pd.DataFrame(
            {
                "value": payloads,
                "topic": "transactions_stream",
                "partition": 0,
                "offset": np.arange(len(payloads), dtype=np.int64),
                "timestamp": pd.Timestamp("2024-01-01"),
            }
        )
    )
    # the state operator only runs in a streaming query: replay the static records from files
    records.write.parquet(str(tmp_path / "records"))
    source = spark.readStream.schema(records.schema).parquet(str(tmp_path / "records"))
    query = (
        with_customer_features(parse_events(source))
        .writeStream.format("memory")
        .queryName("scored_static")
        .outputMode("update")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    out = spark.table("scored_static").toPandas()
    assert len(out) == len(payloads)
    bad = out[~out["ok"]]
    assert sorted(bad["offset"]) == [3000, 3001] and bad["reason"].str.len().gt(0).all()
    good = out[out["ok"]].set_index("transaction_id")
    expected = build_features(tx).set_index("transaction_id").loc[good.index]
    for name in CUSTOMER_FEATURES:
        np.testing.assert_allclose(good[name], expected[name], rtol=1e-9, err_msg=name)
