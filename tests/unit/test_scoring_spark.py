"""A micro-batch computed on static data, and the stateless Spark query that feeds it (files, no Kafka):
every feature equals the batch definition, bad records and conflicting duplicates become dead letters."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

from fraudops.config.model import Thresholds, XGBoostParams
from fraudops.features import FEATURE_NAMES, build_features, feature_matrix
from fraudops.model_families import Dataset, fit_xgboost
from fraudops.schema import event_to_json
from fraudops.scoring.batch import score_batch
from fraudops.scoring.champion import LoadedModel, ModelInfo
from fraudops.scoring.customers import CustomerWindows
from fraudops.scoring.parse import EventTimeWindow, kafka_records
from fraudops.scoring.terminals import TerminalTable

THRESHOLDS = Thresholds(review=0.3, block=0.8)
# the small world is of 2018: allow the records' time to be "now"
WINDOW = EventTimeWindow()


@pytest.fixture(scope="module")
def model(small_features) -> LoadedModel:
    X, y = feature_matrix(small_features), small_features["tx_fraud"].to_numpy()
    booster = fit_xgboost(
        Dataset(X[:20000], y[:20000]),
        Dataset(X[20000:30000], y[20000:30000]),
        XGBoostParams(n_estimators=20, max_depth=3),
        class_weight="sqrt",
        threads=1,
        seed=1,
        early_stopping_rounds=10,
    )
    return LoadedModel(ModelInfo("unit", "1", "xgboost"), booster)


def _tables(stored: list[pd.DataFrame]) -> tuple[CustomerWindows, TerminalTable]:
    """The scorer's tables over ``stored`` as if it were ``transactions_raw`` with its labels (a list, so
    a test can commit more to it)."""

    def customers(start):
        rows = pd.concat(stored)
        return rows.loc[
            rows["tx_datetime"] > start, ["transaction_id", "customer_id", "tx_datetime", "tx_amount"]
        ]

    def terminals(start, end):
        rows = pd.concat(stored)
        inside = (rows["tx_datetime"] > start) & (rows["tx_datetime"] <= end)
        return rows.loc[inside, ["terminal_id", "tx_datetime", "tx_fraud"]].astype({"tx_fraud": "float64"})

    return CustomerWindows(customers), TerminalTable(terminals)


def _records(payloads: list[bytes], times: list[pd.Timestamp], first_offset: int = 0) -> pd.DataFrame:
    """Kafka-shaped records as the scorer's query selects them; a live producer sends an event when it
    happens, so the record's time is the event's."""
    return pd.DataFrame(
        {
            "value": payloads,
            "topic": "transactions_stream",
            "partition": 0,
            "offset": np.arange(first_offset, first_offset + len(payloads), dtype=np.int64),
            "kafka_ts_ms": [t.value // 10**6 for t in times],
        }
    )


def _payloads(tx: pd.DataFrame) -> list[bytes]:
    return [event_to_json(row).encode() for row in tx.to_dict("records")]


def test_score_batch_on_static_frames(small_transactions, model) -> None:
    tx = small_transactions
    history, live = tx.iloc[:40_000], tx.iloc[40_000:43_000]
    customers, terminals = _tables([history])
    first = live.iloc[0].to_dict()
    conflicting = {**first, "tx_amount": first["tx_amount"] + 1}
    payloads = [
        *_payloads(live),
        b"{broken",
        event_to_json(first).encode(),
        event_to_json(conflicting).encode(),
    ]
    times = [*live["tx_datetime"], live["tx_datetime"].iloc[-1], first["tx_datetime"], first["tx_datetime"]]
    batch = score_batch(_records(payloads, list(times)), customers, terminals, model, THRESHOLDS, WINDOW, 0)

    assert batch.events["transaction_id"].tolist() == live["transaction_id"].tolist()
    reasons = batch.rejected.set_index("offset")["reason"]
    assert sorted(reasons.index) == [len(live), len(live) + 2]  # the re-delivery is neither
    assert reasons[len(live)] and "conflicting duplicate" in reasons[len(live) + 2]
    streamed = pd.DataFrame(
        [json.loads(f) for f in batch.scored["features"]], index=batch.events["transaction_id"]
    )
    expected = build_features(tx.iloc[:43_000]).set_index("transaction_id").loc[streamed.index]
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(streamed[name], expected[name], rtol=1e-9, atol=1e-12, err_msg=name)
    assert expected["terminal_risk_30d"].max() > 0 and expected["customer_nb_tx_30d"].max() > 1
    scores = np.clip(model.model.predict(feature_matrix(expected)), 0, 1)
    np.testing.assert_allclose(batch.scored["score"], scores, rtol=1e-6)
    assert set(batch.alerts["transaction_id"]) == set(streamed.index[scores >= THRESHOLDS.review])


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("unit-scoring")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_the_stateless_query_feeds_micro_batches_in_order(spark, small_transactions, model, tmp_path) -> None:
    tx = small_transactions.iloc[:9_000]
    committed = [tx.iloc[:0]]
    customers, terminals = _tables(committed)
    folder = tmp_path / "records"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(tx)), 3)):
        chunk = tx.iloc[part]
        records = _records(_payloads(chunk), list(chunk["tx_datetime"]), first_offset=int(part[0]))
        # the Kafka source's shape: binary value and a timestamp the query turns into milliseconds
        frame = records.drop(columns="kafka_ts_ms").assign(timestamp=chunk["tx_datetime"].to_numpy())
        # one file per chunk, written in event-time order: a stream scores in arrival order
        spark.createDataFrame(frame).coalesce(1).write.parquet(str(tmp_path / f"staging-{i}"))
        for file in (tmp_path / f"staging-{i}").glob("*.parquet"):
            file.rename(folder / f"{i}-{file.name}")
            os.utime(folder / f"{i}-{file.name}", (1_700_000_000 + i, 1_700_000_000 + i))
    schema = spark.read.parquet(str(folder)).schema
    seen: list[pd.DataFrame] = []

    def each(batch, batch_id: int) -> None:
        scored = score_batch(batch.toPandas(), customers, terminals, model, THRESHOLDS, WINDOW, 0)
        customers.append(scored.events)
        committed.append(tx.loc[tx["transaction_id"].isin(scored.events["transaction_id"])])
        seen.append(scored.scored)

    source = spark.readStream.schema(schema).option("maxFilesPerTrigger", 1).parquet(str(folder))
    query = (
        kafka_records(source)
        .writeStream.foreachBatch(each)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    assert query.exception() is None
    assert len(seen) == 3
    out = pd.concat(seen).set_index("transaction_id")
    assert sorted(out.index) == sorted(tx["transaction_id"])
    streamed = pd.DataFrame([json.loads(f) for f in out["features"]], index=out.index)
    expected = build_features(tx).set_index("transaction_id").loc[out.index]
    for name in ("customer_nb_tx_1d", "customer_avg_amount_30d", "terminal_nb_tx_30d"):
        np.testing.assert_allclose(streamed[name], expected[name], rtol=1e-9, err_msg=name)
