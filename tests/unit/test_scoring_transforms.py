"""The scorer's pure transforms on static frames: parsing with the one schema, customer windows carried in
state across micro-batches, the delayed terminal table, assembly, scoring and dead letters."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from fraudops.features import FEATURE_NAMES, build_features
from fraudops.schema import MAX_EVENT_BYTES, event_to_json
from fraudops.scoring.parse import to_epoch_us, validate_frame
from fraudops.scoring.sinks import assemble_features, dead_letters, events_frame
from fraudops.scoring.state import CUSTOMER_FEATURES, CustomerHistory, customer_step
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
    assert row.state_key == 3


def test_every_kind_of_bad_event_gets_a_reason_and_keeps_its_coordinates() -> None:
    bad = _bad_payloads()
    parsed = validate_frame(_records([*bad.values(), json.dumps(GOOD).encode()]))
    assert parsed["ok"].tolist() == [False] * len(bad) + [True]
    rejected = parsed.iloc[: len(bad)]
    assert rejected["reason"].map(bool).all()
    assert (rejected["state_key"] < 0).all()
    assert rejected["offset"].tolist() == list(range(100, 100 + len(bad)))
    letters = [json.loads(d) for d in dead_letters(rejected, failed_at_ms=1)]
    assert [d["source_offset"] for d in letters] == list(range(100, 100 + len(bad)))
    by_kind = dict(zip(bad, letters, strict=True))
    assert by_kind["broken json"]["payload"] == '{"transaction_id": "t-1", '
    assert by_kind["not utf-8"]["payload_encoding"] == "base64"
    assert "too large" in by_kind["oversized"]["reason"]
    assert "unknown field" in by_kind["unknown field"]["reason"]
    assert "finite" in by_kind["nan amount"]["reason"] or "NaN" in by_kind["nan amount"]["reason"]


def _events(tx: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": tx["transaction_id"].astype(str).to_numpy(),
            "tx_time_us": (tx["tx_datetime"].astype("int64") // 1000).to_numpy(),
            "tx_amount": tx["tx_amount"].to_numpy(),
        }
    )


@pytest.mark.parametrize("batches", [1, 7])
def test_customer_windows_in_state_equal_the_batch_features(small_transactions, batches) -> None:
    tx = small_transactions.iloc[:20_000]
    expected = build_features(tx).set_index("transaction_id")
    got = []
    histories: dict[int, CustomerHistory] = {}
    for part in np.array_split(np.arange(len(tx)), batches):
        chunk = tx.iloc[part]
        for customer, rows in chunk.groupby("customer_id"):
            out, histories[customer] = customer_step(
                histories.get(customer, CustomerHistory.empty()), _events(rows)
            )
            got.append(out)
    features = pd.concat(got).set_index("transaction_id").loc[expected.index]
    for name in CUSTOMER_FEATURES:
        np.testing.assert_allclose(features[name], expected[name], rtol=1e-9, err_msg=name)


def test_state_survives_packing_and_counts_a_redelivered_event_once(small_transactions) -> None:
    rows = small_transactions[small_transactions["customer_id"] == 5].iloc[:6]
    out, history = customer_step(CustomerHistory.empty(), _events(rows.iloc[:4]))
    restored = CustomerHistory.from_state(history.as_state())
    np.testing.assert_array_equal(restored.seconds, history.seconds)
    # events 3 (again) and 4, 5: the repeated one must not count twice
    again, after = customer_step(restored, _events(rows.iloc[3:6]))
    assert len(after.ids) == 6
    assert again["customer_nb_tx_30d"].iloc[0] == out["customer_nb_tx_30d"].iloc[3]


def test_state_is_pruned_to_the_longest_window() -> None:
    day_us = 86_400 * 1_000_000
    events = pd.DataFrame(
        {"transaction_id": ["a", "b"], "tx_time_us": [0, 40 * day_us], "tx_amount": [1.0, 3.0]}
    )
    out, history = customer_step(CustomerHistory.empty(), events)
    assert history.ids.tolist() == ["b"]
    assert out["customer_nb_tx_30d"].tolist() == [1.0, 1.0]


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
    good = _events(tx).assign(
        customer_id=tx["customer_id"].to_numpy(),
        terminal_id=tx["terminal_id"].to_numpy(),
        **{name: 1.0 for name in CUSTOMER_FEATURES},
    )
    frame = assemble_features(good, {name: np.zeros(len(tx)) for name in TERMINAL_FEATURES})
    assert tuple(frame.columns) == FEATURE_NAMES
    np.testing.assert_allclose(frame["tx_amount"], tx["tx_amount"])
    events = events_frame(good)
    assert events["tx_datetime"].tolist() == tx["tx_datetime"].tolist()
    assert (
        json.loads(event_to_json(events.iloc[0].to_dict()))["transaction_id"] == tx["transaction_id"].iloc[0]
    )
    assert not math.isnan(frame.to_numpy().sum())
