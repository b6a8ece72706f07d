from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fraudops.importer import import_transactions, stable_int_ids, to_transactions
from fraudops.schema import UNKNOWN_SCENARIO, pandas_dtypes


def test_handbook_layout_loads_without_a_mapping(tmp_path: Path, small_transactions: pd.DataFrame) -> None:
    upper = small_transactions.head(500).rename(columns=str.upper)
    path = tmp_path / "handbook.csv"
    upper.to_csv(path, index=False)
    frame = import_transactions(path)
    expected = small_transactions.head(500).reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=True)


def test_mapping_string_ids_and_time_zones(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {
            "id": ["t1", "t2", "t3"],
            "ts": ["2024-01-01T10:00:00+01:00", "2024-01-01T09:30:00Z", "2024-01-01T11:00:00Z"],
            "card": ["4111-xxxx-1", "4111-xxxx-2", "4111-xxxx-1"],
            "merchant": [17, 18, 17],
            "amount": ["12.5", "3", "99.99"],
            "is_fraud": [0, 1, 0],
        }
    )
    path = tmp_path / "bank.parquet"
    raw.to_parquet(path)
    mapping = {
        "id": "transaction_id",
        "ts": "tx_datetime",
        "card": "customer_id",
        "merchant": "terminal_id",
        "amount": "tx_amount",
        "is_fraud": "tx_fraud",
    }
    frame = import_transactions(path, mapping)
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        c: str(pd.api.types.pandas_dtype(t)) for c, t in pandas_dtypes().items()
    }
    # sorted by time; +01:00 became UTC
    assert frame["transaction_id"].tolist() == ["t1", "t2", "t3"]
    assert frame["tx_datetime"].tolist() == list(
        pd.to_datetime(["2024-01-01 09:00", "2024-01-01 09:30", "2024-01-01 11:00"])
    )
    # the same card gets the same id, in this file and in any other
    cards = frame["customer_id"].tolist()
    assert cards[0] == cards[2] != cards[1]
    assert cards[0] == stable_int_ids(pd.Series(["4111-xxxx-1"]))[0] >= 0
    assert frame["terminal_id"].tolist() == [17, 18, 17]
    assert frame["tx_fraud_scenario"].tolist() == [0, UNKNOWN_SCENARIO, 0]


def test_labels_are_optional() -> None:
    raw = pd.DataFrame(
        {"transaction_id": ["a"], "tx_datetime": ["2024-01-01 00:00"], "customer_id": [1], "terminal_id": [2],
         "tx_amount": [1.0]}
    )  # fmt: skip
    frame = to_transactions(raw)
    assert list(frame.columns) == ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"drop": "amount"}, r"no column for field\(s\) \['tx_amount'\]"),
        ({"amount": [-1.0]}, "tx_amount': 1 value\\(s\\) below 0"),
        ({"map": {"nope": "tx_amount"}}, "not in the input"),
        ({"map": {"amount": "price"}}, "not schema fields"),
    ],
)
def test_bad_input_fails_with_a_clear_message(change: dict, message: str) -> None:
    raw = pd.DataFrame(
        {"transaction_id": ["a"], "tx_datetime": ["2024-01-01"], "customer_id": [1], "terminal_id": [2],
         "amount": [1.0]}
    )  # fmt: skip
    mapping = change.get("map", {"amount": "tx_amount"})
    if "drop" in change:
        raw, mapping = raw.drop(columns=change["drop"]), {}
    if "amount" in change:
        raw["amount"] = change["amount"]
    with pytest.raises(ValueError, match=message):
        to_transactions(raw, mapping)


def test_unknown_extension_needs_a_format(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_text("x")
    with pytest.raises(ValueError, match="file_format"):
        import_transactions(path)
