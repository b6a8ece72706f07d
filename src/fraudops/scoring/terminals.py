"""The delayed terminal table: terminal transactions with their published labels, refreshed in batch.

The terminal features of a transaction at ``t`` read the terminal's transactions in
``(t - D - 30 days, t - D]`` (``D`` = the label delay). The table holds that span for the current
micro-batch, loaded from Postgres (``transactions_raw`` joined with ``fraud_labels``) and advanced
incrementally: each refresh reads only the newest stretch, and once per hour of event time it re-reads a
settle margin, for labels written late, instead of the whole month.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from fraudops.features import (
    SECONDS_PER_DAY,
    TERMINAL_FEATURES,
    WINDOW_FEATURES,
    at_epoch_seconds,
    epoch_seconds,
    online_window_features,
    window_reach_s,
)

__all__ = ["TERMINAL_FEATURES", "Loader", "TerminalTable"]
_TERMINAL = [f for f in WINDOW_FEATURES if f.entity == "terminal_id"]
_REACH_S = window_reach_s("terminal_id")
_DELAY_S = min(f.delay_days for f in _TERMINAL) * SECONDS_PER_DAY
# event time between two re-reads of the settle margin: a live stream at 1,000 tx/s would otherwise read a
# day of transactions in every micro-batch
SETTLE_EVERY_S = 3600

# (start, end] -> frame with terminal_id, tx_datetime, tx_fraud (NaN = not known)
Loader = Callable[[datetime, datetime], pd.DataFrame]


class TerminalTable:
    def __init__(self, load: Loader, settle: timedelta = timedelta(hours=24)) -> None:
        self._load = load
        self._settle_s = int(settle.total_seconds())
        self._terminal = np.empty(0, np.int64)
        self._seconds = np.empty(0, np.int64)
        self._fraud = np.empty(0, np.float64)
        self._from: int | None = None
        self._until: int | None = None
        self._settled_until: int | None = None

    def __len__(self) -> int:
        return len(self._seconds)

    def _read(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        frame = self._load(at_epoch_seconds(start), at_epoch_seconds(end))
        return (
            frame["terminal_id"].to_numpy(np.int64),
            epoch_seconds(frame["tx_datetime"]),
            frame["tx_fraud"].to_numpy(np.float64),
        )

    def refresh(self, min_seconds: int, max_seconds: int) -> None:
        """Make the table cover what events with times in ``[min_seconds, max_seconds]`` need."""
        need_from, need_until = min_seconds - _REACH_S, max_seconds - _DELAY_S
        if self._from is None or self._until is None or need_from < self._from:
            t, s, f = self._read(need_from, need_until)
            self._terminal, self._seconds, self._fraud = t, s, f
            self._from, self._until = need_from, need_until
            self._settled_until = need_until
        elif need_until > self._until:
            reload_from = self._until
            if self._settled_until is None or need_until >= self._settled_until + SETTLE_EVERY_S:
                reload_from = max(self._from, self._until - self._settle_s)
                self._settled_until = need_until
            t, s, f = self._read(reload_from, need_until)
            keep = self._seconds <= reload_from
            self._terminal = np.concatenate([self._terminal[keep], t])
            self._seconds = np.concatenate([self._seconds[keep], s])
            self._fraud = np.concatenate([self._fraud[keep], f])
            self._until = need_until
        # forget what no later event can reach (events mostly move forward in time)
        if need_from > self._from + SECONDS_PER_DAY:
            keep = self._seconds > need_from
            self._terminal, self._seconds, self._fraud = (
                self._terminal[keep],
                self._seconds[keep],
                self._fraud[keep],
            )
            self._from = need_from

    def features(self, terminal_id: np.ndarray, seconds: np.ndarray) -> dict[str, np.ndarray]:
        """:data:`TERMINAL_FEATURES` of transactions (terminal, time); call :meth:`refresh` first."""
        return online_window_features(
            "terminal_id", self._terminal, self._seconds, {"fraud": self._fraud}, terminal_id, seconds
        )
