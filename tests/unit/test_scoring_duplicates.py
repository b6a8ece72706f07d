"""The scorer's duplicate rules on static frames (the Postgres side runs in
tests/integration/test_scoring_store.py)."""

from __future__ import annotations

import pandas as pd

from fraudops.scoring.store import same_content, split_batch_duplicates


def _events(rows: list[tuple[str, str, int, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    )
    frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"], format="ISO8601")
    return frame


def test_redelivery_is_dropped_and_other_content_is_a_conflict() -> None:
    events = _events(
        [
            ("a", "2026-01-01 10:00:00", 1, 2, 10.0),
            ("b", "2026-01-01 10:00:01", 1, 2, 11.0),
            ("a", "2026-01-01 10:00:00", 1, 2, 10.0),  # the same event again
            ("a", "2026-01-01 10:00:00", 1, 2, 10.5),  # same id, another amount
            ("b", "2026-01-01 10:00:01.000001", 1, 2, 11.0),  # another time, by a microsecond
            ("c", "2026-01-01 10:00:02", 3, 4, 1.0),
        ]
    )
    first, conflicts = split_batch_duplicates(events)
    assert first.tolist() == [True, True, False, False, False, True]
    assert conflicts.tolist() == [False, False, False, True, True, False]


def test_no_duplicates_and_an_empty_batch() -> None:
    events = _events([("a", "2026-01-01", 1, 2, 1.0), ("b", "2026-01-01", 1, 2, 1.0)])
    first, conflicts = split_batch_duplicates(events)
    assert first.all() and not conflicts.any()
    first, conflicts = split_batch_duplicates(events.iloc[:0])
    assert len(first) == len(conflicts) == 0


def test_same_content_compares_every_event_column() -> None:
    left = _events([("a", "2026-01-01", 1, 2, 1.0)] * 5)
    right = _events(
        [
            ("a", "2026-01-01", 1, 2, 1.0),
            ("x", "2026-01-01", 1, 2, 1.0),
            ("a", "2026-01-02", 1, 2, 1.0),
            ("a", "2026-01-01", 9, 2, 1.0),
            ("a", "2026-01-01", 1, 9, 1.0),
        ]
    )
    assert same_content(left, right).tolist() == [True, False, False, False, False]
