"""The feature definitions, and their batch execution over a transactions frame.

This module is the one place that says what a feature is: names, order of the model's input vector,
window lengths, the label delay and the time resolution. The batch code here serves training; the
streaming scorer computes the same definitions online (:func:`online_window_features`, against its
in-memory customer history and delayed terminal table) and a parity test holds the two equal.

Definitions, for a transaction of customer ``c`` on terminal ``m`` at time ``t`` (whole seconds, UTC):

- ``tx_amount``; ``tx_during_weekend`` (Saturday or Sunday); ``tx_during_night`` (hours 0-6: 00:00-06:59, the
  fraud-detection literature's night).
- ``customer_nb_tx_{w}d`` / ``customer_avg_amount_{w}d``: count and mean amount of ``c``'s transactions
  with time in ``(t - w, t]``; the current transaction is included, so the count is at least 1.
- ``terminal_nb_tx_{w}d`` / ``terminal_risk_{w}d``: count of ``m``'s transactions with time in
  ``(t - D - w, t - D]`` and the share of them that are fraud, 0 when there are none; ``D`` is the label
  delay. A label becomes known ``D`` after its transaction, so a transaction exactly ``D`` old counts and
  a younger one never does: the features use only labels known at ``t``.

``terminal_days_since_first_fraud_30d`` (issue 17): days from the earliest of ``m``'s frauds with time in
``(t - D - 30 d, t - D]`` to ``t`` (labels delayed exactly as the terminal risk's), 0 when there is none
(a real value is at least ``D``): how long a compromise has been going on, which the delayed risk, at 1
for a week after a compromise ends, does not tell.

``customer_max_amount_7d_over_median_30d`` (issue 17): the largest of ``c``'s amounts with time in
``(t - 7 d, t]`` over the median of ``c``'s amounts in ``(t - 30 d, t]`` (both windows include the current
transaction; 0 when the median is 0). A stolen card's amounts are a multiple of its owner's usual ones;
the median, unlike the mean, stays at the usual amount while a minority of the month is stolen, and the
week's largest amount is high both for a stolen transaction and for the card's other transactions while
it is being used that way.

Windows are sets of transactions by time, not "the previous N rows", so the result does not depend on
the order in which simultaneous events arrive, which a stream cannot guarantee.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from fraudops.config.model import LABEL_DELAY_DAYS

CUSTOMER_WINDOWS_DAYS: tuple[int, ...] = (1, 7, 30)
TERMINAL_WINDOWS_DAYS: tuple[int, ...] = (1, 7, 30)
# hours 0..NIGHT_LAST_HOUR (00:00-06:59) are night, as in the Fraud Detection Handbook
NIGHT_LAST_HOUR = 6
# Saturday and Sunday, as datetime.weekday() numbers
WEEKEND_DAYS: tuple[int, ...] = (5, 6)
# times are compared in whole seconds (floor); the simulator produces whole seconds anyway
TIME_RESOLUTION_S = 1

SECONDS_PER_DAY = 86_400
_NS_PER_SECOND = 1_000_000_000

Entity = Literal["customer_id", "terminal_id"]
Statistic = Literal["count", "mean_amount", "fraud_rate"]


@dataclass(frozen=True)
class WindowFeature:
    """An aggregate over an entity's transactions with time in ``(t - delay - window, t - delay]``."""

    name: str
    entity: Entity
    statistic: Statistic
    window_days: int
    delay_days: int = 0


def _window_features() -> tuple[WindowFeature, ...]:
    features: list[WindowFeature] = []
    for w in CUSTOMER_WINDOWS_DAYS:
        features.append(WindowFeature(f"customer_nb_tx_{w}d", "customer_id", "count", w))
        features.append(WindowFeature(f"customer_avg_amount_{w}d", "customer_id", "mean_amount", w))
    for w in TERMINAL_WINDOWS_DAYS:
        features.append(WindowFeature(f"terminal_nb_tx_{w}d", "terminal_id", "count", w, LABEL_DELAY_DAYS))
        features.append(
            WindowFeature(f"terminal_risk_{w}d", "terminal_id", "fraud_rate", w, LABEL_DELAY_DAYS)
        )
    return tuple(features)


WINDOW_FEATURES: tuple[WindowFeature, ...] = _window_features()
TRANSACTION_FEATURES: tuple[str, ...] = ("tx_amount", "tx_during_weekend", "tx_during_night")
# the 15 features of the Fraud Detection Handbook (what the ablation compares against)
BASELINE_FEATURES: tuple[str, ...] = TRANSACTION_FEATURES + tuple(f.name for f in WINDOW_FEATURES)

# tried and dropped by the ablation (BENCHMARKS.md, "Features"): the amount over the mean of the customer's
# other amounts (7 and 30 days) and over the median of its 7-day amounts, the days since the customer's
# previous transaction and the customer's count of transactions on the terminal, the days since the
# terminal's latest known fraud; removing each raised the protocol AP of at least one family
FRAUD_AGE_WINDOW_DAYS = 30
FRAUD_AGE_FEATURES: tuple[str, ...] = (f"terminal_days_since_first_fraud_{FRAUD_AGE_WINDOW_DAYS}d",)
# the largest amount of the short window over the median of the long one
AMOUNT_SHAPE_WINDOWS_DAYS: tuple[int, int] = (7, 30)
AMOUNT_SHAPE_FEATURES: tuple[str, ...] = ("customer_max_amount_7d_over_median_30d",)
# the model's input vector, in this order
FEATURE_NAMES: tuple[str, ...] = BASELINE_FEATURES + FRAUD_AGE_FEATURES + AMOUNT_SHAPE_FEATURES
# every customer-side feature: computed together from the customer's recent amounts
CUSTOMER_FEATURES: tuple[str, ...] = (
    tuple(f.name for f in WINDOW_FEATURES if f.entity == "customer_id") + AMOUNT_SHAPE_FEATURES
)
# every terminal-side feature: computed together from the terminal's delayed labelled history
TERMINAL_FEATURES: tuple[str, ...] = (
    tuple(f.name for f in WINDOW_FEATURES if f.entity == "terminal_id") + FRAUD_AGE_FEATURES
)
KEY_COLUMNS: tuple[str, ...] = ("transaction_id", "tx_datetime", "customer_id", "terminal_id")


def _epoch_seconds(times: pd.Series | np.ndarray) -> np.ndarray:
    ns = np.asarray(times, dtype="datetime64[ns]").astype(np.int64)
    return ns // (_NS_PER_SECOND * TIME_RESOLUTION_S) * TIME_RESOLUTION_S


def transaction_features(tx_datetime: pd.Series | np.ndarray, tx_amount: pd.Series | np.ndarray) -> dict:
    """The per-transaction features (no history needed)."""
    seconds = _epoch_seconds(tx_datetime)
    # 1970-01-01 was a Thursday (weekday 3)
    weekday = (seconds // SECONDS_PER_DAY + 3) % 7
    hour = (seconds % SECONDS_PER_DAY) // 3600
    return {
        "tx_amount": np.asarray(tx_amount, dtype=np.float64),
        "tx_during_weekend": np.isin(weekday, WEEKEND_DAYS).astype(np.float64),
        "tx_during_night": (hour <= NIGHT_LAST_HOUR).astype(np.float64),
    }


class _Windows:
    """Time-window sums for one entity: keys sorted by (entity, time) with prefix sums of the values.

    Each row gets a key ``entity_code * stride + seconds``; the stride exceeds the time span plus the
    longest window, so a window query can never reach into the previous entity's rows and one global
    ``searchsorted`` answers all rows at once.
    """

    def __init__(
        self, entity: np.ndarray, seconds: np.ndarray, longest_s: int, values: dict[str, np.ndarray]
    ):
        codes, _ = pd.factorize(entity, sort=False)
        rel = seconds - seconds.min() if len(seconds) else seconds
        stride = int(rel.max() if len(rel) else 0) + longest_s + 1
        if len(codes) and (int(codes.max()) + 1) * stride >= 2**62:
            raise ValueError("too many entities over too long a time span for int64 window keys")
        order = np.lexsort((rel, codes))
        self.sorted_keys = (codes.astype(np.int64) * stride + rel)[order]
        # position of each input row in the sorted order, to hand results back in input order
        self.rank = np.empty_like(order)
        self.rank[order] = np.arange(len(order))
        self.sorted_values = {name: np.asarray(v)[order] for name, v in values.items()}
        self.prefix = {
            name: np.concatenate([[0.0], np.cumsum(v, dtype=np.float64)])
            for name, v in self.sorted_values.items()
        }

    def marked_ages(self, name: str, window_s: int, delay_s: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row (input order): :func:`marked_ages` of the rows whose ``name`` value is 1."""
        marked = self.sorted_keys[self.sorted_values[name] == 1]
        first, last = marked_ages(marked, self.sorted_keys, window_s, delay_s)
        return first[self.rank], last[self.rank]

    def statistic(self, name: str, window_s: int, statistic: WindowStatistic) -> np.ndarray:
        """Per row (input order): ``statistic`` of ``name`` over ``(t - window, t]``."""
        lo = np.searchsorted(self.sorted_keys, self.sorted_keys - window_s, side="right")
        hi = np.searchsorted(self.sorted_keys, self.sorted_keys, side="right")
        return _window_reduce(self.sorted_values[name], lo, hi, _WINDOW_REDUCERS[statistic])[self.rank]

    def counts_and_sums(self, window_s: int, delay_s: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per row (input order): count and value sums over ``(t - delay - window, t - delay]``."""
        # sorted queries make searchsorted walk memory in order: ~10x faster than input-order queries
        hi = np.searchsorted(self.sorted_keys, self.sorted_keys - delay_s, side="right")[self.rank]
        lo = np.searchsorted(self.sorted_keys, self.sorted_keys - delay_s - window_s, side="right")[self.rank]
        return (hi - lo).astype(np.float64), {name: p[hi] - p[lo] for name, p in self.prefix.items()}


def marked_ages(
    marked: np.ndarray, queries: np.ndarray, window_s: int, delay_s: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds from each query back to the earliest and to the latest of the sorted ``marked`` keys in
    ``(q - delay - window, q - delay]``; 0 and 0 when there is none."""
    lo = np.searchsorted(marked, queries - delay_s - window_s, side="right")
    hi = np.searchsorted(marked, queries - delay_s, side="right")
    if not len(marked):
        zeros = np.zeros(len(queries))
        return zeros, zeros.copy()
    found = hi > lo
    first = np.where(found, queries - marked[np.minimum(lo, len(marked) - 1)], 0)
    last = np.where(found, queries - marked[np.maximum(hi - 1, 0)], 0)
    return first.astype(np.float64), last.astype(np.float64)


def _window_reduce(
    sorted_values: np.ndarray, lo: np.ndarray, hi: np.ndarray, reduce: Callable[..., np.ndarray]
) -> np.ndarray:
    """``reduce(sorted_values[lo:hi])`` per query; 0 for an empty window.

    Queries are grouped by window length, so each group is one gather into a (queries x length) block
    and one vectorized ``reduce(block, axis=1)``: a few hundred groups instead of a Python call per
    query."""
    out = np.zeros(len(lo))
    lengths = hi - lo
    order = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[order]
    starts = np.flatnonzero(np.diff(sorted_lengths, prepend=-1))
    for begin, end in zip(starts, [*starts[1:], len(order)], strict=True):
        n = int(sorted_lengths[begin])
        if n > 0:
            rows = order[begin:end]
            out[rows] = reduce(sorted_values[lo[rows, None] + np.arange(n)], axis=1)
    return out


WindowStatistic = Literal["median", "max"]
_WINDOW_REDUCERS: dict[str, Callable[..., np.ndarray]] = {"median": np.median, "max": np.max}


def amount_shape_features(statistic: Callable[[int, WindowStatistic], np.ndarray]) -> dict[str, np.ndarray]:
    """:data:`AMOUNT_SHAPE_FEATURES` from ``statistic(window_s, "median" | "max")`` of the customer's
    amounts in the window, current transaction included (batch and online share this)."""
    short, long = (d * SECONDS_PER_DAY for d in AMOUNT_SHAPE_WINDOWS_DAYS)
    ratio = _ratio(statistic(short, "max"), statistic(long, "median"))
    return dict(zip(AMOUNT_SHAPE_FEATURES, (ratio,), strict=True))


def fraud_age_features(ages: Callable[[int, int], tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """:data:`FRAUD_AGE_FEATURES` from ``ages(window_s, delay_s)`` -> :func:`marked_ages` of the
    terminals' frauds (batch and online share this)."""
    first, _ = ages(FRAUD_AGE_WINDOW_DAYS * SECONDS_PER_DAY, LABEL_DELAY_DAYS * SECONDS_PER_DAY)
    return dict(zip(FRAUD_AGE_FEATURES, (first / SECONDS_PER_DAY,), strict=True))


def statistic_of(feature: WindowFeature, counts: np.ndarray, sums: dict[str, np.ndarray]) -> np.ndarray:
    """A window feature's value from its window's counts and sums (batch and online share this)."""
    if feature.statistic == "count":
        return counts
    if feature.statistic == "mean_amount":
        return _ratio(sums["amount"], counts)
    return _ratio(sums["fraud"], counts)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def build_features(transactions: pd.DataFrame, *, fraud: pd.Series | None = None) -> pd.DataFrame:
    """Features of every transaction in ``transactions``, point in time, in the input's row order.

    ``transactions`` needs the event columns of :mod:`fraudops.schema`; the terminal features need the
    labels, from ``fraud`` (aligned with the rows; NaN = not known) or else the ``tx_fraud`` column.
    Returns the key columns, the label columns present in the input, then :data:`FEATURE_NAMES`.
    The frame must hold the history the windows need: rows in the first ``30 + 7`` days have truncated
    windows, so training windows should start after that burn-in.
    """
    if fraud is None:
        if "tx_fraud" not in transactions.columns:
            raise ValueError("terminal risk features need labels: pass fraud= or a tx_fraud column")
        fraud = transactions["tx_fraud"]
    seconds = _epoch_seconds(transactions["tx_datetime"])
    amount = transactions["tx_amount"].to_numpy(dtype=np.float64)
    fraud_values = pd.to_numeric(fraud, errors="coerce").fillna(0).to_numpy(dtype=np.float64)

    out = pd.DataFrame({c: transactions[c].to_numpy() for c in KEY_COLUMNS}, index=transactions.index)
    out["transaction_id"] = transactions["transaction_id"]
    for label in ("tx_fraud", "tx_fraud_scenario"):
        if label in transactions.columns:
            out[label] = transactions[label]
    features = transaction_features(transactions["tx_datetime"], amount)

    by_entity: dict[str, _Windows] = {}
    for entity in ("customer_id", "terminal_id"):
        defs = [f for f in WINDOW_FEATURES if f.entity == entity]
        windows = by_entity[entity] = _Windows(
            transactions[entity].to_numpy(),
            seconds,
            window_reach_s(entity),
            {"amount": amount, "fraud": fraud_values},
        )
        cache: dict[tuple[int, int], tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        for f in defs:
            span = (f.window_days * SECONDS_PER_DAY, f.delay_days * SECONDS_PER_DAY)
            if span not in cache:
                cache[span] = windows.counts_and_sums(*span)
            features[f.name] = statistic_of(f, *cache[span])
    terminals, customers = by_entity["terminal_id"], by_entity["customer_id"]
    features.update(fraud_age_features(lambda w, d: terminals.marked_ages("fraud", w, d)))
    features.update(amount_shape_features(lambda w, stat: customers.statistic("amount", w, stat)))

    for name in FEATURE_NAMES:
        out[name] = features[name]
    return out


def feature_matrix(features: pd.DataFrame, names: tuple[str, ...] = FEATURE_NAMES) -> np.ndarray:
    """The model input: :data:`FEATURE_NAMES` (or ``names``, for an ablation) in order, as float32 (what
    the boosters use internally)."""
    return features.loc[:, list(names)].to_numpy(dtype=np.float32)


# -- online execution (the streaming scorer) --------------------------------------------------------------


def window_reach_s(entity: Entity) -> int:
    """How far back the longest window of ``entity`` reaches from a transaction (window plus delay)."""
    days = [f.window_days + f.delay_days for f in WINDOW_FEATURES if f.entity == entity]
    if entity == "terminal_id":
        days.append(FRAUD_AGE_WINDOW_DAYS + LABEL_DELAY_DAYS)
    return max(days) * SECONDS_PER_DAY


def at_epoch_seconds(seconds: int) -> datetime:
    """The naive UTC time of whole epoch seconds (what the online tables' loaders are asked for)."""
    return datetime(1970, 1, 1) + timedelta(seconds=seconds)


def epoch_seconds(times: pd.Series | np.ndarray) -> np.ndarray:
    """Whole seconds since the epoch at the features' time resolution (what every window compares)."""
    return _epoch_seconds(times)


class OnlineWindows:
    """A history (entity, time, values) sorted once, answering window queries of several spans.

    Only the history rows of the queried entities are kept: a window never reaches another entity's
    rows, and a micro-batch touches a small share of all customers or terminals. Keys are
    ``entity_code * stride + (seconds - base)``, so one global ``searchsorted`` answers every query.
    """

    def __init__(
        self,
        history_entity: np.ndarray,
        history_seconds: np.ndarray,
        history_values: dict[str, np.ndarray],
        query_entity: np.ndarray,
        query_seconds: np.ndarray,
        reach_s: int,
    ) -> None:
        history_entity = np.asarray(history_entity)
        query_entity = np.asarray(query_entity)
        history_seconds = np.asarray(history_seconds, dtype=np.int64)
        query_seconds = np.asarray(query_seconds, dtype=np.int64)
        entities = pd.unique(query_entity)
        if len(history_entity) > 4 * len(entities):
            keep = np.isin(history_entity, entities)
            history_entity, history_seconds = history_entity[keep], history_seconds[keep]
            history_values = {k: np.asarray(v)[keep] for k, v in history_values.items()}
        # codes from the queries' entities: history rows all belong to one of them now, or to none
        index = pd.Index(entities)
        h_codes = index.get_indexer(history_entity).astype(np.int64)
        q_codes = index.get_indexer(query_entity).astype(np.int64)
        known = h_codes >= 0
        h_codes, history_seconds = h_codes[known], history_seconds[known]
        values = {k: np.asarray(v, dtype=np.float64)[known] for k, v in history_values.items()}
        all_seconds = np.concatenate([history_seconds, query_seconds])
        base = int(all_seconds.min()) - reach_s - 1 if len(all_seconds) else 0
        stride = (int(all_seconds.max()) - base + 1) if len(all_seconds) else 1
        if (len(index) + 1) * stride >= 2**62:
            raise ValueError("too many entities over too long a time span for int64 window keys")
        order = np.lexsort((history_seconds, h_codes))
        self._keys = (h_codes * stride + (history_seconds - base))[order]
        self._queries = q_codes * stride + (query_seconds - base)
        self._reach_s = reach_s
        self._sorted_values = {name: v[order] for name, v in values.items()}
        self._prefix = {
            name: np.concatenate([[0.0], np.cumsum(v, dtype=np.float64)])
            for name, v in self._sorted_values.items()
        }

    def marked_ages(self, name: str, window_s: int, delay_s: int) -> tuple[np.ndarray, np.ndarray]:
        """Per query: :func:`marked_ages` of the history rows whose ``name`` value is 1."""
        if window_s + delay_s > self._reach_s:
            raise ValueError(
                f"a span of {window_s + delay_s} s exceeds the {self._reach_s} s this index covers"
            )
        return marked_ages(self._keys[self._sorted_values[name] == 1], self._queries, window_s, delay_s)

    def statistic(self, name: str, window_s: int, statistic: WindowStatistic) -> np.ndarray:
        """Per query: ``statistic`` of ``name`` over its entity's history in ``(t - window, t]``."""
        if window_s > self._reach_s:
            raise ValueError(f"a span of {window_s} s exceeds the {self._reach_s} s this index covers")
        lo = np.searchsorted(self._keys, self._queries - window_s, side="right")
        hi = np.searchsorted(self._keys, self._queries, side="right")
        return _window_reduce(self._sorted_values[name], lo, hi, _WINDOW_REDUCERS[statistic])

    def counts_and_sums(self, window_s: int, delay_s: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per query: count and value sums of its entity's history in ``(t - delay - window, t - delay]``."""
        if window_s + delay_s > self._reach_s:
            raise ValueError(
                f"a span of {window_s + delay_s} s exceeds the {self._reach_s} s this index covers"
            )
        hi = np.searchsorted(self._keys, self._queries - delay_s, side="right")
        lo = np.searchsorted(self._keys, self._queries - delay_s - window_s, side="right")
        return (hi - lo).astype(np.float64), {name: p[hi] - p[lo] for name, p in self._prefix.items()}


def online_window_features(
    entity: Entity,
    history_entity: np.ndarray,
    history_seconds: np.ndarray,
    history_values: dict[str, np.ndarray],
    query_entity: np.ndarray,
    query_seconds: np.ndarray,
) -> dict[str, np.ndarray]:
    """The :data:`WINDOW_FEATURES` of ``entity`` for each query, for terminals also the
    :data:`FRAUD_AGE_FEATURES` (:data:`TERMINAL_FEATURES`), for customers also the
    :data:`AMOUNT_SHAPE_FEATURES` (:data:`CUSTOMER_FEATURES`), from a history holding the amounts
    (``"amount"``) or the fraud labels (``"fraud"``, NaN = unknown = 0) of the entity's transactions.

    For the customer windows the history must include the queried transactions themselves (the
    current transaction counts, as in :func:`build_features`)."""
    defs = [f for f in WINDOW_FEATURES if f.entity == entity]
    values = {k: np.nan_to_num(np.asarray(v, dtype=np.float64)) for k, v in history_values.items()}
    windows = OnlineWindows(
        history_entity, history_seconds, values, query_entity, query_seconds, window_reach_s(entity)
    )
    out: dict[str, np.ndarray] = {}
    cache: dict[tuple[int, int], tuple[np.ndarray, dict[str, np.ndarray]]] = {}
    for f in defs:
        span = (f.window_days * SECONDS_PER_DAY, f.delay_days * SECONDS_PER_DAY)
        if span not in cache:
            cache[span] = windows.counts_and_sums(*span)
        out[f.name] = statistic_of(f, *cache[span])
    if entity == "terminal_id":
        out.update(fraud_age_features(lambda w, d: windows.marked_ages("fraud", w, d)))
    else:
        out.update(amount_shape_features(lambda w, stat: windows.statistic("amount", w, stat)))
    return out
