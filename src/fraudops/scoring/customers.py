"""The customers' recent transactions in the scorer's memory: what a micro-batch's customer windows read.

A transaction at ``t`` needs its customer's transactions in ``(t - 30 days, t]``. The table holds that span
for the current micro-batch: loaded from Postgres ``transactions_raw`` on the first batch (and again should
a batch reach further back), then kept current by the scorer itself, which appends each micro-batch's
accepted events once Postgres has committed them. The whole micro-batch's windows are then one vectorized
call (:func:`fraudops.features.online_window_features`), with no Python call per customer.

Exactly-once: a transaction id counts once, whether it arrives twice in one batch, again in a later one,
or in a batch that Spark replays after a crash (whose rows the restarted scorer has already loaded from
Postgres). A replay therefore sees the same history, plus the batch, each event once, as its first attempt.

Rows that other writers add to ``transactions_raw`` while the scorer runs (a backfill of history) are seen
from the scorer's next start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd

from fraudops.features import (
    CUSTOMER_FEATURES,
    SECONDS_PER_DAY,
    at_epoch_seconds,
    epoch_seconds,
    online_window_features,
    window_reach_s,
)

__all__ = ["CUSTOMER_FEATURES", "CustomerWindows"]

# transactions with tx_datetime > start -> frame with transaction_id, customer_id, tx_datetime, tx_amount
Loader = Callable[[datetime], pd.DataFrame]


class CustomerWindows:
    def __init__(self, load: Loader) -> None:
        self._load = load
        self._customer = np.empty(0, np.int64)
        self._seconds = np.empty(0, np.int64)
        self._amount = np.empty(0, np.float64)
        self._ids = np.empty(0, object)
        self._known: set[str] = set()
        self._from: int | None = None

    def __len__(self) -> int:
        return len(self._seconds)

    def refresh(self, min_seconds: int) -> None:
        """Make the table cover what events at ``min_seconds`` or later need."""
        need_from = min_seconds - window_reach_s("customer_id")
        if self._from is None or need_from < self._from:
            frame = self._load(at_epoch_seconds(need_from))
            self._customer = frame["customer_id"].to_numpy(np.int64)
            self._seconds = epoch_seconds(frame["tx_datetime"])
            self._amount = frame["tx_amount"].to_numpy(np.float64)
            self._ids = frame["transaction_id"].to_numpy(object)
            self._known = set(self._ids.tolist())
            self._from = need_from
        elif need_from > self._from + SECONDS_PER_DAY:
            # forget what no later event can reach (events mostly move forward in time); daily, not per batch
            keep = self._seconds > need_from
            self._customer, self._seconds = self._customer[keep], self._seconds[keep]
            self._amount, self._ids = self._amount[keep], self._ids[keep]
            self._known = set(self._ids.tolist())
            self._from = need_from

    def is_new(self, transaction_ids: np.ndarray) -> np.ndarray:
        """Per id: not in the table yet (a re-delivered or replayed transaction is)."""
        known = self._known
        return np.fromiter((i not in known for i in transaction_ids), dtype=bool, count=len(transaction_ids))

    def features(self, events: pd.DataFrame) -> dict[str, np.ndarray]:
        """:data:`CUSTOMER_FEATURES` of a micro-batch's events (``transaction_id``, ``customer_id``,
        ``tx_datetime``, ``tx_amount``; each id once), against the table plus the new events themselves.
        Call :meth:`refresh` first."""
        customer = events["customer_id"].to_numpy(np.int64)
        seconds = epoch_seconds(events["tx_datetime"])
        amount = events["tx_amount"].to_numpy(np.float64)
        new = self.is_new(events["transaction_id"].to_numpy(object))
        return online_window_features(
            "customer_id",
            np.concatenate([self._customer, customer[new]]),
            np.concatenate([self._seconds, seconds[new]]),
            {"amount": np.concatenate([self._amount, amount[new]])},
            customer,
            seconds,
        )

    def append(self, events: pd.DataFrame) -> None:
        """Events Postgres has committed join the table (those already in it are skipped)."""
        new = self.is_new(events["transaction_id"].to_numpy(object))
        if not new.any():
            return
        added = events.loc[new]
        # an id twice among the appended is one transaction (the store accepts one of them)
        added = added.loc[~added["transaction_id"].duplicated()]
        self._customer = np.concatenate([self._customer, added["customer_id"].to_numpy(np.int64)])
        self._seconds = np.concatenate([self._seconds, epoch_seconds(added["tx_datetime"])])
        self._amount = np.concatenate([self._amount, added["tx_amount"].to_numpy(np.float64)])
        ids = added["transaction_id"].to_numpy(object)
        self._ids = np.concatenate([self._ids, ids])
        self._known.update(ids.tolist())
