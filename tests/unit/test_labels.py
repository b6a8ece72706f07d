from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from fraudops.labels import DelayedLabelFeed, label_records, overridable_by, prevails
from references import labels_known_at


def test_label_records_are_published_after_the_delay(small_transactions: pd.DataFrame) -> None:
    labels = label_records(small_transactions)
    assert list(labels.columns) == ["transaction_id", "tx_fraud", "tx_fraud_scenario", "available_at"]
    assert ((labels["available_at"] - small_transactions["tx_datetime"]) == pd.Timedelta(days=7)).all()
    cutoff = pd.Timestamp("2018-04-20")
    known = labels_known_at(labels, cutoff)
    assert len(known) == (small_transactions["tx_datetime"] <= cutoff - pd.Timedelta(days=7)).sum() > 0
    assert (known["available_at"] <= cutoff).all()
    shorter = label_records(small_transactions, timedelta(days=2))
    assert len(labels_known_at(shorter, cutoff)) > len(known)


def test_delayed_feed_releases_labels_in_order_when_due() -> None:
    feed = DelayedLabelFeed(timedelta(minutes=10))
    t0 = datetime(2018, 10, 1, 12, 0)
    feed.push("a", t0, 0, 0)
    feed.push("b", t0 + timedelta(minutes=1), 1, 2)
    feed.push("c", t0 + timedelta(minutes=5), 0, 0)
    assert feed.due(t0 + timedelta(minutes=9, seconds=59)) == []
    due = feed.due(t0 + timedelta(minutes=11))
    assert [label.transaction_id for label in due] == ["a", "b"]
    assert due[1].as_record() == {
        "transaction_id": "b",
        "tx_fraud": 1,
        "tx_fraud_scenario": 2,
        "available_at": t0 + timedelta(minutes=11),
    }
    assert len(feed) == 1
    with pytest.raises(ValueError, match="in order"):
        feed.push("old", t0, 0, 0)
    assert [label.transaction_id for label in feed.due(t0 + timedelta(hours=1))] == ["c"]


def test_analyst_labels_win_over_simulated_ones_for_the_same_id() -> None:
    # nothing stored yet: any source lands
    assert prevails("simulator", None) and prevails("analyst", None)
    # an analyst's verdict replaces the simulated label, and a later verdict corrects an earlier one
    assert prevails("analyst", "simulator")
    assert prevails("analyst", "analyst")
    # the delayed feed never overwrites: neither an analyst's verdict nor its own first label
    assert not prevails("simulator", "analyst")
    assert not prevails("simulator", "simulator")
    assert overridable_by("analyst") == ["simulator", "analyst"]
    assert overridable_by("simulator") == []
    with pytest.raises(ValueError, match="unknown label source"):
        prevails("chargeback-bot", "simulator")
