"""Customer windows in Spark state: per customer, the transactions of the longest window.

``applyInPandasWithState`` keyed by customer keeps (seconds, amount, id) of the customer's recent
transactions in the checkpointed state store. A micro-batch's events are scored against that history plus
the batch's own events of the customer, with the window definitions of :mod:`fraudops.features`, so the
features equal the batch ones. On a restart Spark replays the unfinished batch against the state version
it started from: the same input gives the same features. Ids in the state make a re-delivered event
count once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.features import SECONDS_PER_DAY, WINDOW_FEATURES, online_window_features
from fraudops.scoring.parse import PARSED_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

CUSTOMER_FEATURES: tuple[str, ...] = tuple(f.name for f in WINDOW_FEATURES if f.entity == "customer_id")
_LONGEST_S = max(f.window_days + f.delay_days for f in WINDOW_FEATURES if f.entity == "customer_id") * (
    SECONDS_PER_DAY
)
# packed arrays: pyspark 4.2 cannot read array types back in a state schema (KeyError 'elementType')
STATE_DDL = "seconds binary, amounts binary, ids binary"
_ID_SEPARATOR = "\x1f"
OUTPUT_DDL = ", ".join(
    [f"`{name}` {kind}" for name, kind in PARSED_COLUMNS] + [f"`{name}` double" for name in CUSTOMER_FEATURES]
)
_US_PER_SECOND = 1_000_000


@dataclass(frozen=True)
class CustomerHistory:
    seconds: np.ndarray
    amounts: np.ndarray
    ids: np.ndarray

    @classmethod
    def empty(cls) -> CustomerHistory:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, object))

    def as_state(self) -> tuple[bytes, bytes, bytes]:
        return (
            self.seconds.astype("<i8").tobytes(),
            self.amounts.astype("<f8").tobytes(),
            _ID_SEPARATOR.join(self.ids.tolist()).encode(),
        )

    @classmethod
    def from_state(cls, state: tuple[Any, ...]) -> CustomerHistory:
        seconds, amounts, ids = (bytes(v) for v in state)
        id_list = ids.decode().split(_ID_SEPARATOR) if ids else []
        return cls(
            np.frombuffer(seconds, "<i8").astype(np.int64),
            np.frombuffer(amounts, "<f8").astype(np.float64),
            np.asarray(id_list, dtype=object),
        )


def customer_step(history: CustomerHistory, events: pd.DataFrame) -> tuple[pd.DataFrame, CustomerHistory]:
    """Features of one customer's new (valid) events and the customer's updated history.

    ``events`` holds ``transaction_id``, ``tx_time_us`` and ``tx_amount``. Returns ``events`` with the
    :data:`CUSTOMER_FEATURES` columns added, and the history pruned to the longest window.
    """
    seconds = events["tx_time_us"].to_numpy(dtype=np.int64) // _US_PER_SECOND
    amounts = events["tx_amount"].to_numpy(dtype=np.float64)
    ids = events["transaction_id"].to_numpy(dtype=object)
    # a re-delivered event (same id) joins the history once
    fresh = ~pd.Index(ids).duplicated() & ~np.isin(ids, history.ids)
    all_seconds = np.concatenate([history.seconds, seconds[fresh]])
    all_amounts = np.concatenate([history.amounts, amounts[fresh]])
    all_ids = np.concatenate([history.ids, ids[fresh]])
    features = online_window_features(
        "customer_id",
        np.zeros(len(all_seconds), np.int64),
        all_seconds,
        {"amount": all_amounts},
        np.zeros(len(seconds), np.int64),
        seconds,
    )
    out = events.copy()
    for name in CUSTOMER_FEATURES:
        out[name] = features[name]
    keep = all_seconds > all_seconds.max() - _LONGEST_S if len(all_seconds) else np.empty(0, bool)
    return out, CustomerHistory(all_seconds[keep], all_amounts[keep], all_ids[keep])


def _update_customer(
    key: tuple[Any, ...], frames: Iterator[pd.DataFrame], state: Any, ttl_ms: int
) -> Iterator[pd.DataFrame]:
    if state.hasTimedOut:  # idle longer than every window: nothing in the history can count any more
        state.remove()
        return
    events = pd.concat(list(frames), ignore_index=True)
    if int(key[0]) < 0:  # bad events: pass through, no state
        for name in CUSTOMER_FEATURES:
            events[name] = np.nan
        yield events
        return
    history = CustomerHistory.from_state(state.get) if state.exists else CustomerHistory.empty()
    out, history = customer_step(history, events)
    state.update(history.as_state())
    state.setTimeoutDuration(ttl_ms)
    yield out


def state_ttl_ms(ttl_days: float) -> int:
    """Idle time after which a customer's state is dropped; shorter than a window would change features."""
    ttl_s = ttl_days * SECONDS_PER_DAY
    if ttl_s < _LONGEST_S:
        raise ValueError(
            f"customer state TTL of {ttl_days} days is shorter than the longest customer window "
            f"({_LONGEST_S / SECONDS_PER_DAY:g} days): idle customers would lose history the features use"
        )
    return int(ttl_s * 1000)


def with_customer_features(parsed: DataFrame, ttl_days: float) -> DataFrame:
    """Parsed events -> the same rows with the customer window features (null for bad events).

    A customer's state expires ``ttl_days`` of processing time after its last transaction, so the state
    store holds the active customers only instead of every card ever seen.
    """
    return customer_state_operator(parsed, state_ttl_ms(ttl_days))


def customer_state_operator(parsed: DataFrame, ttl_ms: int) -> DataFrame:
    """The stateful operator itself, with an unchecked TTL (tests expire state in seconds)."""
    from functools import partial

    from pyspark.sql.streaming.state import GroupStateTimeout

    return parsed.groupBy("state_key").applyInPandasWithState(
        partial(_update_customer, ttl_ms=ttl_ms),
        OUTPUT_DDL,
        STATE_DDL,
        "Update",
        GroupStateTimeout.ProcessingTimeTimeout,
    )
