from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from fraudops.schema import (
    MAX_AMOUNT,
    MAX_EVENT_BYTES,
    conform,
    event_to_json,
    frame_problems,
    pandas_dtypes,
    validate_event,
)

GOOD = {
    "transaction_id": "42-20180401-0000001",
    "tx_datetime": "2018-04-01T10:15:00Z",
    "customer_id": 17,
    "terminal_id": 3021,
    "tx_amount": 57.16,
}


def _with(**changes: object) -> dict:
    event = dict(GOOD)
    event.update(changes)
    return event


def test_good_event_is_accepted_and_normalized() -> None:
    result = validate_event(json.dumps(GOOD))
    assert result.ok, result.reason
    assert result.event == {**GOOD, "tx_datetime": datetime(2018, 4, 1, 10, 15)}


def test_mapping_and_bytes_are_accepted() -> None:
    assert validate_event(GOOD).ok
    assert validate_event(json.dumps(GOOD).encode()).ok


def test_aware_timestamp_is_converted_to_naive_utc() -> None:
    result = validate_event(_with(tx_datetime="2018-04-01T12:15:00+02:00"))
    assert result.ok and result.event["tx_datetime"] == datetime(2018, 4, 1, 10, 15)


def test_integral_float_id_is_accepted_as_int() -> None:
    result = validate_event(_with(customer_id=17.0))
    assert result.ok and result.event["customer_id"] == 17 and isinstance(result.event["customer_id"], int)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ('{"transaction_id": "x", ', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "tx_amount"}), "missing field(s): tx_amount"),
        (json.dumps(_with(is_fraud=1)), "unknown field(s): is_fraud"),
        (json.dumps(_with(tx_amount="57.16")), "field 'tx_amount': expected a number, got str"),
        (json.dumps(_with(tx_amount=True)), "field 'tx_amount': expected a number, got bool"),
        (json.dumps(_with(tx_amount=-0.01)), "field 'tx_amount': must be >= 0"),
        (json.dumps(_with(tx_amount=float("nan"))), "field 'tx_amount': must be finite"),
        (json.dumps(_with(tx_amount=float("inf"))), "field 'tx_amount': must be finite"),
        (json.dumps(_with(tx_amount=MAX_AMOUNT * 10)), "field 'tx_amount': must be <="),
        (json.dumps(_with(customer_id=1.5)), "field 'customer_id': expected an integer"),
        (json.dumps(_with(customer_id=-1)), "field 'customer_id': must be >= 0"),
        (json.dumps(_with(terminal_id=None)), "field 'terminal_id' is null"),
        (json.dumps(_with(transaction_id=123)), "field 'transaction_id': expected a string"),
        (json.dumps(_with(transaction_id="  ")), "field 'transaction_id' is empty"),
        (json.dumps(_with(transaction_id="x" * 65)), "longer than 64"),
        (json.dumps(_with(tx_datetime="yesterday")), "not an ISO-8601 timestamp"),
        (json.dumps(_with(tx_datetime=1522577700)), "expected an ISO-8601 timestamp string"),
        (json.dumps(_with(transaction_id="x" * 60, pad="y" * MAX_EVENT_BYTES)), "payload too large"),
    ],
)
def test_bad_event_is_rejected_with_a_clear_reason(payload: str | bytes, reason: str) -> None:
    result = validate_event(payload)
    assert not result.ok
    assert reason in result.reason
    assert result.event is None


def test_event_json_round_trip() -> None:
    event = validate_event(GOOD).event
    assert validate_event(event_to_json(event)).event == event


def test_simulated_frames_have_the_schema_dtypes(small_transactions: pd.DataFrame) -> None:
    assert {c: str(t) for c, t in small_transactions.dtypes.items()} == {
        c: str(pd.api.types.pandas_dtype(t)) for c, t in pandas_dtypes().items()
    }
    assert frame_problems(small_transactions, labels=True) == []


def test_frame_problems_lists_every_violation() -> None:
    frame = pd.DataFrame(
        {
            "transaction_id": ["a", "a", "b"],
            "tx_datetime": pd.to_datetime(["2018-04-01", "2018-04-01", None]),
            "customer_id": [1, 2, 3],
            "terminal_id": [1.0, 2.5, 3.0],
            "tx_amount": [1.0, -2.0, np.inf],
        }
    )
    problems = "; ".join(frame_problems(frame))
    assert "'tx_datetime': 1 null" in problems
    assert "'terminal_id': 1 non-integer" in problems
    assert "'tx_amount': 1 infinite" in problems
    assert "'tx_amount': 1 value(s) below 0" in problems
    assert "'transaction_id': 1 duplicate" in problems
    with pytest.raises(ValueError, match="do not match the schema"):
        conform(frame)
    assert frame_problems(frame.drop(columns="tx_amount"))[0] == "missing column 'tx_amount'"
