"""The delayed label feed: ground truth becomes known a delay after the transaction (chargebacks,
investigations). Batch code turns a labelled transactions frame into the label records with the time
each becomes available; the stream side holds labels back until their time has come.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from fraudops.features import LABEL_DELAY_DAYS

DEFAULT_DELAY = timedelta(days=LABEL_DELAY_DAYS)
LABEL_RECORD_COLUMNS: tuple[str, ...] = ("transaction_id", "tx_fraud", "tx_fraud_scenario", "available_at")


def label_records(transactions: pd.DataFrame, delay: timedelta = DEFAULT_DELAY) -> pd.DataFrame:
    """One label per transaction with ``available_at = tx_datetime + delay`` (the ``fraud_labels`` rows)."""
    return pd.DataFrame(
        {
            "transaction_id": transactions["transaction_id"],
            "tx_fraud": transactions["tx_fraud"].astype("int8"),
            "tx_fraud_scenario": transactions["tx_fraud_scenario"].astype("int8"),
            "available_at": transactions["tx_datetime"] + pd.Timedelta(delay),
        }
    )


# where a label comes from, weakest first: the simulator's delayed feed (stand-in for chargebacks), then an
# analyst's verdict in the console, which is the better ground truth for the same transaction
LABEL_SOURCES: tuple[str, ...] = ("simulator", "analyst")
ANALYST_SOURCE = "analyst"


def prevails(incoming: str, existing: str | None) -> bool:
    """Whether a label from ``incoming`` replaces the stored label from ``existing`` for the same
    transaction id (``fraud_labels`` keeps one label per id, the one a retraining uses).

    A stronger source replaces a weaker one; an analyst's verdict replaces an earlier analyst's (a verdict
    corrected); a simulated label never replaces anything, so a delayed feed that arrives after an analyst
    leaves the verdict in place.
    """
    for source in (incoming, existing):
        if source is not None and source not in LABEL_SOURCES:
            raise ValueError(f"unknown label source {source!r}: one of {', '.join(LABEL_SOURCES)}")
    if existing is None:
        return True
    rank_in, rank_old = LABEL_SOURCES.index(incoming), LABEL_SOURCES.index(existing)
    return rank_in > rank_old or (rank_in == rank_old and incoming == ANALYST_SOURCE)


def overridable_by(incoming: str) -> list[str]:
    """The stored sources a label from ``incoming`` replaces (what the upsert's WHERE clause lets through)."""
    return [source for source in LABEL_SOURCES if prevails(incoming, source)]


@dataclass(frozen=True)
class Label:
    transaction_id: str
    tx_fraud: int
    tx_fraud_scenario: int
    available_at: datetime

    def as_record(self) -> dict[str, object]:
        return {
            "transaction_id": self.transaction_id,
            "tx_fraud": self.tx_fraud,
            "tx_fraud_scenario": self.tx_fraud_scenario,
            "available_at": self.available_at,
        }


class DelayedLabelFeed:
    """Holds the labels of streamed transactions until ``delay`` after their event time.

    Event times arrive in order (simulated or wall-clock), so a FIFO queue is enough: the oldest label is
    always the next one due.
    """

    def __init__(self, delay: timedelta = DEFAULT_DELAY) -> None:
        self.delay = delay
        self._pending: deque[Label] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def push(self, transaction_id: str, event_time: datetime, tx_fraud: int, tx_fraud_scenario: int) -> None:
        if self._pending and event_time + self.delay < self._pending[-1].available_at:
            raise ValueError(f"event time {event_time} is older than the previous one: feed must be in order")
        self._pending.append(Label(transaction_id, tx_fraud, tx_fraud_scenario, event_time + self.delay))

    def due(self, now: datetime) -> list[Label]:
        """Remove and return every label whose time has come by ``now``."""
        out: list[Label] = []
        while self._pending and self._pending[0].available_at <= now:
            out.append(self._pending.popleft())
        return out
