"""The scorer's pure transforms on static frames: parsing with the one schema, the in-memory customer
windows across micro-batches, the delayed terminal table, assembly, scoring and dead letters."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from fraudops.features import FEATURE_NAMES, build_features
from fraudops.schema import MAX_EVENT_BYTES, event_to_json
from fraudops.scoring.batch import assemble_features, dead_letters, events_frame
from fraudops.scoring.customers import CUSTOMER_FEATURES, CustomerWindows
from fraudops.scoring.parse import to_epoch_us, validate_frame
from fraudops.scoring.terminals import TERMINAL_FEATURES, TerminalTable


def _records(payloads: list[bytes | None]) -> pd.DataFrame:
    n = len(payloads)
    return pd.DataFrame(
        {
            "value": payloads,
            "topic": ["transactions_stream"] * n,
            "partition": [1] * n,
            "offset": list(range(100, 100 + n)),
            # sent when it happened, as live traffic is
            "kafka_ts_ms": [int(pd.Timestamp(GOOD["tx_datetime"]).timestamp() * 1000)] * n,
        }
    )


GOOD = {
    "transaction_id": "t-1",
    "tx_datetime": "2018-04-01T10:00:00Z",
    "customer_id": 3,
    "terminal_id": 7,
    "tx_amount": 12.5,
}


def _bad_payloads() -> dict[str, bytes | None]:
    def variant(**changes: object) -> bytes:
        event = {**GOOD, **changes}
        return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()

    return {
        "broken json": b'{"transaction_id": "t-1", ',
        "not an object": b"[1, 2, 3]",
        "missing field": variant(tx_amount=...),
        "wrong type": variant(customer_id="three"),
        "negative amount": variant(tx_amount=-1.0),
        "nan amount": b'{"transaction_id":"t-1","tx_datetime":"2018-04-01T10:00:00Z","customer_id":3,'
        b'"terminal_id":7,"tx_amount":NaN}',
        "huge amount": variant(tx_amount=1e300),
        "unknown field": variant(channel="web"),
        "oversized": variant(transaction_id="x" * 10) + b" " * MAX_EVENT_BYTES,
        "bad timestamp": variant(tx_datetime="yesterday"),
        "not utf-8": b"\xff\xfe\x00garbage",
        "empty": None,
    }


def test_valid_events_are_normalized() -> None:
    parsed = validate_frame(_records([json.dumps(GOOD).encode()]))
    row = parsed.iloc[0]
    assert bool(row.ok) and row.reason is None
    assert row.transaction_id == "t-1" and row.customer_id == 3 and row.terminal_id == 7
    assert row.tx_time_us == to_epoch_us(pd.Timestamp("2018-04-01 10:00:00").to_pydatetime())


def test_every_kind_of_bad_event_gets_a_reason_and_keeps_its_coordinates() -> None:
    bad = _bad_payloads()
    parsed = validate_frame(_records([*bad.values(), json.dumps(GOOD).encode()]))
    assert parsed["ok"].tolist() == [False] * len(bad) + [True]
    rejected = parsed.iloc[: len(bad)]
    assert rejected["reason"].map(bool).all()
    assert rejected["offset"].tolist() == list(range(100, 100 + len(bad)))
    letters = [json.loads(d) for d in dead_letters(rejected, failed_at_ms=1)]
    assert [d["source_offset"] for d in letters] == list(range(100, 100 + len(bad)))
    by_kind = dict(zip(bad, letters, strict=True))
    assert by_kind["broken json"]["payload"] == '{"transaction_id": "t-1", '
    assert by_kind["not utf-8"]["payload_encoding"] == "base64"
    assert "too large" in by_kind["oversized"]["reason"]
    assert "unknown field" in by_kind["unknown field"]["reason"]
    assert "finite" in by_kind["nan amount"]["reason"] or "NaN" in by_kind["nan amount"]["reason"]


def _stored(tx: pd.DataFrame):
    """A loader over ``tx`` as if it were ``transactions_raw``, recording what it was asked."""
    calls: list = []

    def load(start):
        calls.append(start)
        return tx.loc[
            tx["tx_datetime"] > start,
            ["transaction_id", "customer_id", "terminal_id", "tx_datetime", "tx_amount"],
        ]

    return load, calls


def _seconds(tx: pd.DataFrame) -> np.ndarray:
    return tx["tx_datetime"].astype("int64").to_numpy() // 10**9


@pytest.mark.parametrize("batches", [1, 7, 60])
def test_customer_windows_equal_the_batch_features(small_transactions, batches) -> None:
    tx = small_transactions.iloc[:20_000]
    expected = build_features(tx).set_index("transaction_id")
    load, calls = _stored(tx.iloc[:0])
    customers = CustomerWindows(load)
    got = []
    for part in np.array_split(np.arange(len(tx)), batches):
        chunk = tx.iloc[part]
        customers.refresh(int(_seconds(chunk).min()))
        got.append(pd.DataFrame(customers.features(chunk), index=chunk["transaction_id"]))
        customers.append(chunk)
    features = pd.concat(got).loc[expected.index]
    for name in CUSTOMER_FEATURES:
        np.testing.assert_allclose(features[name], expected[name], rtol=1e-9, err_msg=name)
    assert len(calls) == 1, "the history is loaded once, then kept current by the scorer itself"


def test_a_restarted_scorer_loads_the_history_and_a_replay_sees_the_same_features(small_transactions) -> None:
    tx = small_transactions.iloc[:8_000]
    before, batch = tx.iloc[:7_000], tx.iloc[7_000:]
    running = CustomerWindows(_stored(before)[0])
    running.refresh(int(_seconds(batch).min()))
    first_attempt = running.features(batch)
    # the batch was committed, then the scorer died before Spark recorded it: the restart loads it back
    restarted = CustomerWindows(_stored(tx)[0])
    restarted.refresh(int(_seconds(batch).min()))
    assert not restarted.is_new(batch["transaction_id"].to_numpy(object)).any()
    replay = restarted.features(batch)
    for name in CUSTOMER_FEATURES:
        np.testing.assert_array_equal(replay[name], first_attempt[name], err_msg=name)
    expected = build_features(tx).set_index("transaction_id").loc[batch["transaction_id"]]
    np.testing.assert_allclose(replay["customer_nb_tx_30d"], expected["customer_nb_tx_30d"])


def test_a_redelivered_event_counts_once(small_transactions) -> None:
    rows = small_transactions[small_transactions["customer_id"] == 5].iloc[:6]
    customers = CustomerWindows(_stored(rows.iloc[:0])[0])
    customers.refresh(int(_seconds(rows).min()))
    first = customers.features(rows.iloc[:4])
    customers.append(rows.iloc[:4])
    # events 3 (again) and 4, 5: the repeated one must not count twice
    again = customers.features(rows.iloc[3:6])
    customers.append(rows.iloc[3:6])
    assert len(customers) == 6
    assert again["customer_nb_tx_30d"][0] == first["customer_nb_tx_30d"][3]


def test_history_is_pruned_to_the_longest_window_and_reloaded_when_a_batch_reaches_back() -> None:
    day = pd.Timedelta(days=1)
    t0 = pd.Timestamp("2026-01-01")
    tx = pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c"],
            "customer_id": [1, 1, 1],
            "terminal_id": [2, 2, 2],
            "tx_datetime": [t0, t0 + 10 * day, t0 + 40 * day],
            "tx_amount": [1.0, 2.0, 3.0],
        }
    )
    load, calls = _stored(tx)
    customers = CustomerWindows(load)
    customers.refresh(int(_seconds(tx.iloc[1:2])[0]))
    assert len(customers) == 3 and len(calls) == 1
    customers.refresh(int(_seconds(tx.iloc[2:3])[0]))  # 30 days on: "a" and "b" are out of every window
    assert len(customers) == 1 and len(calls) == 1
    assert customers.features(tx.iloc[2:3])["customer_nb_tx_30d"].tolist() == [1.0]
    customers.refresh(int(_seconds(tx.iloc[1:2])[0]))  # a late batch reaches back: loaded again
    assert len(calls) == 2 and len(customers) == 3
    assert customers.features(tx.iloc[1:2])["customer_nb_tx_30d"].tolist() == [2.0]


def test_terminal_table_equals_the_batch_features(small_transactions) -> None:
    tx = small_transactions
    expected = build_features(tx)
    stored = tx.loc[:, ["terminal_id", "tx_datetime", "tx_fraud"]].astype({"tx_fraud": "float64"})
    loads: list[tuple] = []

    def load(start, end):
        loads.append((start, end))
        inside = (stored["tx_datetime"] > start) & (stored["tx_datetime"] <= end)
        return stored.loc[inside]

    table = TerminalTable(load)
    seconds = tx["tx_datetime"].astype("int64").to_numpy() // 10**9
    got = {name: np.empty(len(tx)) for name in TERMINAL_FEATURES}
    for part in np.array_split(np.arange(len(tx)), 25):
        table.refresh(int(seconds[part].min()), int(seconds[part].max()))
        features = table.features(tx["terminal_id"].to_numpy()[part], seconds[part])
        for name in TERMINAL_FEATURES:
            got[name][part] = features[name]
    for name in TERMINAL_FEATURES:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, err_msg=name)
    # incremental: later loads read a day or so, not the whole month
    spans = [(end - start).total_seconds() / 86_400 for start, end in loads[1:]]
    assert max(spans) < 30


def test_assembled_vector_matches_feature_names(small_transactions) -> None:
    tx = small_transactions.iloc[:50]
    good = pd.DataFrame(
        {
            "transaction_id": tx["transaction_id"].astype(str).to_numpy(),
            "tx_time_us": (tx["tx_datetime"].astype("int64") // 1000).to_numpy(),
            "tx_amount": tx["tx_amount"].to_numpy(),
            "customer_id": tx["customer_id"].to_numpy(),
            "terminal_id": tx["terminal_id"].to_numpy(),
        }
    )
    events = events_frame(good)
    frame = assemble_features(
        events,
        {name: np.ones(len(tx)) for name in CUSTOMER_FEATURES},
        {name: np.zeros(len(tx)) for name in TERMINAL_FEATURES},
    )
    assert tuple(frame.columns) == FEATURE_NAMES
    np.testing.assert_allclose(frame["tx_amount"], tx["tx_amount"])
    assert events["tx_datetime"].tolist() == tx["tx_datetime"].tolist()
    assert (
        json.loads(event_to_json(events.iloc[0].to_dict()))["transaction_id"] == tx["transaction_id"].iloc[0]
    )
    assert not math.isnan(frame.to_numpy().sum())


def test_prediction_messages_carry_what_postgres_holds() -> None:
    from fraudops.scoring.batch import prediction_messages

    committed = pd.DataFrame(
        {
            "transaction_id": ['q"uote\u2028', "plain"],
            "customer_id": [2**62, 3],
            "score": [0.1 + 0.2, 1e-07],
            "decision": ["BLOCK", "APPROVE"],
            "model_name": ["fraud-detector", "fraud-detector"],
            "model_version": ["7", "7"],
            "scored_at": pd.to_datetime(
                ["2026-11-30 12:00:00.123456+00:00", "2026-11-30 12:00:01.000000+00:00"]
            ),
        }
    )
    keys, values = prediction_messages(committed, {"plain": 1_700_000_000_123.0}, batch_id=9)
    messages = [json.loads(v) for v in values]
    assert keys == committed["transaction_id"].tolist()
    assert [m["transaction_id"] for m in messages] == keys
    assert messages[0]["score"] == 0.1 + 0.2 and messages[1]["score"] == 1e-07  # every digit
    assert messages[0]["customer_id"] == 2**62
    assert messages[0]["produced_at_ms"] is None and messages[1]["produced_at_ms"] == 1_700_000_000_123
    assert messages[0]["scored_at_ms"] == 1_796_040_000_123 and messages[1]["batch_id"] == 9


def test_terminal_table_reads_the_newest_stretch_and_late_labels_hourly() -> None:
    from fraudops.scoring.terminals import SETTLE_EVERY_S

    t0 = pd.Timestamp("2026-01-01")
    stored = pd.DataFrame(
        # within the settle margin (24 h) of the newest stretch read; its label is not known yet
        {"terminal_id": [7], "tx_datetime": [t0 + pd.Timedelta(hours=12)], "tx_fraud": [np.nan]}
    )
    loads: list[tuple] = []

    def load(start, end):
        loads.append((start, end))
        inside = (stored["tx_datetime"] > start) & (stored["tx_datetime"] <= end)
        return stored.loc[inside]

    table = TerminalTable(load)
    at = int((t0 + pd.Timedelta(days=8)).timestamp())  # the transaction is past the 7-day label delay
    table.refresh(at, at)
    assert table.features(np.array([7]), np.array([at]))["terminal_risk_30d"].tolist() == [0.0]
    stored.loc[0, "tx_fraud"] = 1.0  # the label arrives late
    table.refresh(at + 10, at + 10)
    assert (loads[-1][1] - loads[-1][0]).total_seconds() == 10, "a live batch reads only the new stretch"
    assert table.features(np.array([7]), np.array([at + 10]))["terminal_risk_30d"].tolist() == [0.0]
    later = at + SETTLE_EVERY_S
    table.refresh(later, later)  # an hour on: the settle margin is read again, with the label
    assert table.features(np.array([7]), np.array([later]))["terminal_risk_30d"].tolist() == [1.0]


@pytest.mark.parametrize("family", ["xgboost", "catboost"])
def test_a_champion_trained_on_fewer_features_still_scores_and_evaluates(small_features, family) -> None:
    """After an upgrade adds features, the champion trained before it reads its own columns, in the scorer
    and in the evaluate step, until a new model replaces it."""
    from fraudops.config.model import CatBoostParams, Thresholds, XGBoostParams
    from fraudops.evaluation import evaluate
    from fraudops.features import BASELINE_FEATURES, feature_matrix
    from fraudops.model_families import Dataset, FitOptions, fit
    from fraudops.scoring.batch import score
    from fraudops.scoring.champion import LoadedModel, ModelInfo

    train, valid = small_features.iloc[20_000:28_000], small_features.iloc[28_000:30_000]

    def data(frame: pd.DataFrame) -> Dataset:
        y = frame["tx_fraud"].to_numpy(np.int64)
        return Dataset(feature_matrix(frame, BASELINE_FEATURES), y, BASELINE_FEATURES)

    params = (
        XGBoostParams(n_estimators=20, max_depth=3)
        if family == "xgboost"
        else CatBoostParams(iterations=20, depth=3)
    )
    model = fit(family, data(train), data(valid), params, FitOptions("sqrt", 1, 0, 5))
    assert model.feature_names == BASELINE_FEATURES
    rows = small_features.iloc[30_000:30_200]
    vector = rows.loc[:, list(FEATURE_NAMES)].reset_index(drop=True)  # what the scorer assembles
    scores, _ = score(LoadedModel(ModelInfo("m", "1", family), model), vector, Thresholds())
    np.testing.assert_allclose(scores, model.predict(feature_matrix(rows, BASELINE_FEATURES)), rtol=1e-6)
    evaluation = evaluate(model, rows, Thresholds(), latency_rows=5)
    np.testing.assert_allclose(evaluation.scores, scores, rtol=1e-6)
