"""Card-transaction simulator with known fraud, implemented from the simulator specification (SIMULATOR.md).

Every random decision draws from its own generator keyed by ``(seed, purpose, day, ...)``. A day is
therefore the same whether it is generated in a batch, in a later batch or by the live stream, and a
batch of days is vectorized per day (about 10,000 transactions at a time) instead of looping per
customer.

Day ``k`` is ``start_date + k days``; fraud scenarios start on day 0 of the world. The customer
scenario picks one third of a compromised customer's transactions over the whole 14-day period, so
generating day ``k`` looks up to 13 days ahead at that customer's (deterministic) transactions.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudops.config.model import SimulatorSettings
from fraudops.schema import EVENT_COLUMNS, LABEL_COLUMNS, pandas_dtypes

SECONDS_PER_DAY = 86_400
_NS_PER_SECOND = 1_000_000_000
# time of day of a transaction: Normal(noon, 20,000 s)
_TIME_MEAN_S = 43_200.0
_TIME_SD_S = 20_000.0
_AREA = 100.0
_MEAN_AMOUNT_RANGE = (5.0, 100.0)
_MEAN_TX_PER_DAY_RANGE = (0.0, 4.0)
# customers per block when finding reachable terminals: 256 x 10,000 distances is ~20 MB
_REACH_CHUNK = 256
# room for 10 M transactions a day in the id
_ID_DIGITS = 7

# purposes of the random streams
_WORLD, _DAY, _TERMINAL_COMPROMISE, _CUSTOMER_COMPROMISE, _CUSTOMER_SELECTION = range(5)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


@dataclass(frozen=True)
class World:
    """Customers, terminals and who can pay where; fixed for a seed."""

    settings: SimulatorSettings
    customer_xy: np.ndarray
    mean_amount: np.ndarray
    std_amount: np.ndarray
    mean_tx_per_day: np.ndarray
    terminal_xy: np.ndarray
    # customer c can use reach_terminals[reach_offsets[c]:reach_offsets[c + 1]] (CSR layout)
    reach_offsets: np.ndarray
    reach_terminals: np.ndarray

    @property
    def n_reachable(self) -> np.ndarray:
        return np.diff(self.reach_offsets)


def build_world(settings: SimulatorSettings) -> World:
    rng = _rng(settings.seed, _WORLD)
    n_c, n_t = settings.n_customers, settings.n_terminals
    customer_xy = rng.uniform(0.0, _AREA, size=(n_c, 2))
    mean_amount = rng.uniform(*_MEAN_AMOUNT_RANGE, size=n_c)
    mean_tx_per_day = rng.uniform(*_MEAN_TX_PER_DAY_RANGE, size=n_c)
    terminal_xy = rng.uniform(0.0, _AREA, size=(n_t, 2))

    r2 = settings.radius**2
    counts = np.zeros(n_c, dtype=np.int64)
    terminals: list[np.ndarray] = []
    for lo in range(0, n_c, _REACH_CHUNK):
        block = customer_xy[lo : lo + _REACH_CHUNK]
        d2 = (block[:, :1] - terminal_xy[:, 0]) ** 2 + (block[:, 1:] - terminal_xy[:, 1]) ** 2
        rows, cols = np.nonzero(d2 < r2)  # row-major: grouped by customer, terminals ascending
        counts[lo : lo + len(block)] = np.bincount(rows, minlength=len(block))
        terminals.append(cols)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return World(
        settings=settings,
        customer_xy=customer_xy,
        mean_amount=mean_amount,
        std_amount=mean_amount / 2.0,
        mean_tx_per_day=mean_tx_per_day,
        terminal_xy=terminal_xy,
        reach_offsets=offsets,
        reach_terminals=np.concatenate(terminals).astype(np.int64),
    )


@dataclass(frozen=True)
class _DayBase:
    """One day's transactions before fraud, sorted by time of day (then customer)."""

    customer: np.ndarray
    seconds: np.ndarray
    amount: np.ndarray
    terminal: np.ndarray
    # positions grouped by customer (ascending within a customer), to find one customer's rows fast
    by_customer: np.ndarray
    customer_sorted: np.ndarray

    def rows_of(self, customer: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.customer_sorted, [customer, customer + 1])
        return self.by_customer[lo:hi]


@dataclass(frozen=True)
class DayTransactions:
    """One simulated day, labels included; arrays of equal length sorted by time."""

    day: int
    transaction_id: pa.StringArray
    tx_datetime: np.ndarray  # datetime64[ns]
    customer_id: np.ndarray
    terminal_id: np.ndarray
    tx_amount: np.ndarray
    tx_fraud: np.ndarray
    tx_fraud_scenario: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_id)


class Simulator:
    """Generates days of a world on demand; caches the few days the customer scenario looks at."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.world = build_world(settings)
        self._start_ns = pd.Timestamp(settings.start_date).value
        self._bases: dict[int, _DayBase] = {}
        self._selections: dict[tuple[int, int], dict[int, np.ndarray]] = {}

    # -- calendar ------------------------------------------------------------------------------------
    def day_of(self, when: datetime | pd.Timestamp) -> int:
        """Index of the world day holding ``when`` (naive UTC)."""
        return int((pd.Timestamp(when).value - self._start_ns) // (SECONDS_PER_DAY * _NS_PER_SECOND))

    def date_of(self, day: int) -> pd.Timestamp:
        return pd.Timestamp(self._start_ns + day * SECONDS_PER_DAY * _NS_PER_SECOND)

    # -- transactions before fraud -------------------------------------------------------------------
    def _base(self, day: int) -> _DayBase:
        cached = self._bases.get(day)
        if cached is not None:
            return cached
        w, rng = self.world, _rng(self.settings.seed, _DAY, day)
        n_reachable = w.n_reachable
        counts = rng.poisson(w.mean_tx_per_day)
        counts[n_reachable == 0] = 0  # a customer with no terminal in reach cannot pay anywhere
        customer = np.repeat(np.arange(len(counts)), counts)
        time_draw = rng.normal(_TIME_MEAN_S, _TIME_SD_S, size=customer.size)
        mean = w.mean_amount[customer]
        amount = rng.normal(mean, w.std_amount[customer])
        negative = amount < 0
        amount[negative] = rng.uniform(0.0, 2.0 * mean[negative])
        pick = rng.random(customer.size)
        reach = n_reachable[customer]
        slot = np.minimum((pick * reach).astype(np.int64), reach - 1)
        terminal = w.reach_terminals[w.reach_offsets[customer] + slot]
        # a draw outside the day drops the transaction (no redraw)
        keep = (time_draw >= 0) & (time_draw < SECONDS_PER_DAY)
        seconds = time_draw[keep].astype(np.int64)
        customer, amount, terminal = customer[keep], np.round(amount[keep], 2), terminal[keep]
        order = np.lexsort((customer, seconds))
        customer = customer[order]
        by_customer = np.argsort(customer, kind="stable")
        base = _DayBase(
            customer, seconds[order], amount[order], terminal[order], by_customer, customer[by_customer]
        )
        self._bases[day] = base
        return base

    # -- fraud scenarios ---------------------------------------------------------------------------
    def compromised_terminals(self, day: int) -> np.ndarray:
        """Terminals that become compromised on ``day`` (for ``terminal_compromise_days`` days)."""
        s = self.settings
        n = min(s.compromised_terminals_per_day, s.n_terminals)
        return _rng(s.seed, _TERMINAL_COMPROMISE, day).choice(s.n_terminals, size=n, replace=False)

    def compromised_customers(self, day: int) -> np.ndarray:
        """Customers that become compromised on ``day`` (for ``customer_compromise_days`` days)."""
        s = self.settings
        n = min(s.compromised_customers_per_day, s.n_customers)
        return _rng(s.seed, _CUSTOMER_COMPROMISE, day).choice(s.n_customers, size=n, replace=False)

    def _selection(self, customer: int, from_day: int) -> dict[int, np.ndarray]:
        """Which of the customer's transactions in the compromise period are fraud, per day."""
        key = (customer, from_day)
        cached = self._selections.get(key)
        if cached is not None:
            return cached
        s = self.settings
        days = range(from_day, from_day + s.customer_compromise_days)
        positions = [self._base(d).rows_of(customer) for d in days]
        sizes = np.array([len(p) for p in positions])
        total = int(sizes.sum())
        chosen = np.sort(
            _rng(s.seed, _CUSTOMER_SELECTION, from_day, customer).choice(
                total, size=int(total * s.customer_fraud_share), replace=False
            )
        )
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        selection = {}
        for i, d in enumerate(days):
            mine = chosen[(chosen >= bounds[i]) & (chosen < bounds[i + 1])] - bounds[i]
            if len(mine):
                selection[d] = positions[i][mine]
        self._selections[key] = selection
        return selection

    def _forget_before(self, day: int) -> None:
        """Drop caches no day >= ``day`` needs (keeps a long-running stream's memory flat)."""
        oldest = day - self.settings.customer_compromise_days + 1
        for d in [d for d in self._bases if d < oldest]:
            del self._bases[d]
        for key in [k for k in self._selections if k[1] < oldest]:
            del self._selections[key]

    def day(self, day: int) -> DayTransactions:
        """Transactions of world day ``day`` (>= 0) with their fraud labels."""
        if day < 0:
            raise ValueError(f"day {day} is before the world's start {self.settings.start_date}")
        s = self.settings
        self._forget_before(day)
        base = self._base(day)
        amount = base.amount.copy()
        scenario = np.zeros(len(amount), dtype=np.int8)
        # later scenarios override earlier ones: apply in order 1, 2, 3
        scenario[amount > s.amount_threshold] = 1
        first = max(0, day - s.terminal_compromise_days + 1)
        terminals = [self.compromised_terminals(d) for d in range(first, day + 1)]
        if terminals:
            scenario[np.isin(base.terminal, np.concatenate(terminals))] = 2
        # a mask, so a customer compromised twice in overlapping periods is not multiplied twice
        stolen = np.zeros(len(amount), dtype=bool)
        for d in range(max(0, day - s.customer_compromise_days + 1), day + 1):
            for customer in self.compromised_customers(d):
                picked = self._selection(int(customer), d).get(day)
                if picked is not None:
                    stolen[picked] = True
        amount[stolen] = np.round(amount[stolen] * s.customer_amount_factor, 2)
        scenario[stolen] = 3

        date = self.date_of(day)
        prefix = f"{s.seed}-{date:%Y%m%d}-"
        return DayTransactions(
            day=day,
            transaction_id=_ids(prefix, len(amount)),
            tx_datetime=(date.value + base.seconds * _NS_PER_SECOND).astype("datetime64[ns]"),
            customer_id=base.customer,
            terminal_id=base.terminal,
            tx_amount=amount,
            tx_fraud=(scenario > 0).astype(np.int8),
            tx_fraud_scenario=scenario,
        )


def _ids(prefix: str, n: int) -> pa.StringArray:
    """``<seed>-<yyyymmdd>-<n, zero-padded>``: unique per world, stable across runs, readable."""
    numbers = pc.utf8_lpad(pa.array(np.arange(n)).cast(pa.string()), width=_ID_DIGITS, padding="0")
    return pc.binary_join_element_wise(prefix, numbers, "")


# -- batch -------------------------------------------------------------------------------------------


def _frame(days: list[DayTransactions]) -> pd.DataFrame:
    columns: dict[str, Any] = {
        name: np.concatenate([getattr(d, name) for d in days]) if days else [] for name in EVENT_COLUMNS
    }
    ids = pa.chunked_array([d.transaction_id for d in days], type=pa.string())
    columns["transaction_id"] = pd.Series(ids.combine_chunks(), dtype=pandas_dtypes()["transaction_id"])
    for name in LABEL_COLUMNS:
        columns[name] = np.concatenate([getattr(d, name) for d in days]) if days else []
    return pd.DataFrame(columns).astype(pandas_dtypes())


def iter_day_frames(
    settings: SimulatorSettings,
    first_day: int = 0,
    n_days: int | None = None,
    *,
    days_per_frame: int = 1,
    progress: bool = False,
) -> Iterator[pd.DataFrame]:
    """Frames of ``days_per_frame`` consecutive days (the schema's columns, labels included)."""
    from tqdm.auto import tqdm

    sim = Simulator(settings)
    days = range(first_day, first_day + (settings.n_days if n_days is None else n_days))
    chunk: list[DayTransactions] = []
    for day in tqdm(days, desc="simulating", unit="day", disable=not progress):
        chunk.append(sim.day(day))
        if len(chunk) == days_per_frame:
            yield _frame(chunk)
            chunk = []
    if chunk:
        yield _frame(chunk)


def simulate(
    settings: SimulatorSettings, first_day: int = 0, n_days: int | None = None, *, progress: bool = False
) -> pd.DataFrame:
    """All transactions of ``n_days`` (default: ``settings.n_days``) world days from ``first_day``."""
    frames = list(iter_day_frames(settings, first_day, n_days, days_per_frame=31, progress=progress))
    return pd.concat(frames, ignore_index=True) if frames else _frame([])


def write_parquet(frame: pd.DataFrame, path: str) -> str:
    """Write a transactions frame to Parquet (a local path; parent folders are created)."""
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


# -- stream ------------------------------------------------------------------------------------------

Clock = Literal["simulated", "wallclock"]


@dataclass(frozen=True)
class SimulatedTransaction:
    """One event for ``transactions_stream`` and its label, which the label feed publishes later."""

    event: dict[str, Any]
    tx_fraud: int
    tx_fraud_scenario: int


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def stream_transactions(
    settings: SimulatorSettings,
    start: datetime,
    *,
    clock: Clock = "simulated",
    now: Callable[[], datetime] = _utc_now,
    until: datetime | None = None,
) -> Iterator[SimulatedTransaction]:
    """Endless (or until ``until``, simulated time) transactions from ``start`` on, in time order.

    With ``clock="simulated"`` events keep their simulated time, so a stream continuing a batch is the
    exact continuation of it. With ``clock="wallclock"`` each event is stamped with ``now()`` when it is
    produced (ids and content stay the simulated ones), as live traffic would be.
    """
    sim = Simulator(settings)
    start_ts = pd.Timestamp(start).to_datetime64()
    until_ts = pd.Timestamp(until).to_datetime64() if until is not None else None
    for day in itertools.count(max(0, sim.day_of(start))):
        if until_ts is not None and sim.date_of(day).to_datetime64() >= until_ts:
            return
        txs = sim.day(day)
        ids = txs.transaction_id.to_pylist()
        for i in np.flatnonzero(txs.tx_datetime >= start_ts):
            if until_ts is not None and txs.tx_datetime[i] >= until_ts:
                return
            sim_time = pd.Timestamp(txs.tx_datetime[i]).to_pydatetime()
            yield SimulatedTransaction(
                event={
                    "transaction_id": ids[i],
                    "tx_datetime": now() if clock == "wallclock" else sim_time,
                    "customer_id": int(txs.customer_id[i]),
                    "terminal_id": int(txs.terminal_id[i]),
                    "tx_amount": float(txs.tx_amount[i]),
                },
                tx_fraud=int(txs.tx_fraud[i]),
                tx_fraud_scenario=int(txs.tx_fraud_scenario[i]),
            )


T = TypeVar("T")


def paced(
    items: Iterable[T],
    rate: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[T]:
    """Yield ``items`` at about ``rate`` per second (for publishing a stream at a chosen rate)."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    interval = 1.0 / rate
    due = clock()
    for item in items:
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        yield item
        # after a stall, do not burst more than one second's worth to catch up
        due = max(due + interval, clock() - 1.0)
