from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from fraudops.config.model import SimulatorSettings
from fraudops.schema import event_to_json, validate_event
from fraudops.simulator import Simulator, build_world, paced, simulate, stream_transactions


def _day_index(frame: pd.DataFrame, settings: SimulatorSettings) -> np.ndarray:
    return ((frame["tx_datetime"] - pd.Timestamp(settings.start_date)).dt.days).to_numpy()


def test_default_world_geometry() -> None:
    world = build_world(SimulatorSettings())
    # pi * 5^2 * 10,000 / 100^2 = 78.5 terminals in reach, a little less at the borders
    assert 70 < world.n_reachable.mean() < 80
    assert 5 <= world.mean_amount.min() and world.mean_amount.max() <= 100
    assert np.allclose(world.std_amount, world.mean_amount / 2)
    assert 0 <= world.mean_tx_per_day.min() and world.mean_tx_per_day.max() <= 4
    # reachable means strictly closer than r
    for c in (0, 1, 2):
        terminals = world.reach_terminals[world.reach_offsets[c] : world.reach_offsets[c + 1]]
        dist = np.linalg.norm(world.terminal_xy - world.customer_xy[c], axis=1)
        assert set(terminals) == set(np.flatnonzero(dist < 5.0))


def test_counts_and_times_are_plausible(
    small_world: SimulatorSettings, small_transactions: pd.DataFrame
) -> None:
    world = build_world(small_world)
    kept = norm.cdf(86_400, 43_200, 20_000) - norm.cdf(0, 43_200, 20_000)
    expected = world.mean_tx_per_day[world.n_reachable > 0].sum() * kept * small_world.n_days
    assert abs(len(small_transactions) / expected - 1) < 0.03
    seconds = (
        small_transactions["tx_datetime"] - small_transactions["tx_datetime"].dt.floor("D")
    ).dt.total_seconds()
    assert abs(seconds.mean() - 43_200) < 600
    assert small_transactions["tx_amount"].min() >= 0
    assert (small_transactions["tx_amount"].round(2) == small_transactions["tx_amount"]).all()
    assert small_transactions["tx_datetime"].is_monotonic_increasing
    assert small_transactions["transaction_id"].is_unique
    # every transaction is on a terminal its customer can reach
    customer = small_transactions["customer_id"].to_numpy()
    lo, hi = world.reach_offsets[customer], world.reach_offsets[customer + 1]
    terminal = small_transactions["terminal_id"].to_numpy()
    assert all(terminal[i] in world.reach_terminals[lo[i] : hi[i]] for i in range(0, len(terminal), 97))
    assert 0.001 < small_transactions["tx_fraud"].mean() < 0.2


def test_default_data_set_size_and_fraud_rate() -> None:
    """The spec's default data set: ~1.75 M transactions, ~0.8 % fraud (2 s to generate)."""
    frame = simulate(SimulatorSettings())
    assert 1.65e6 < len(frame) < 1.85e6
    assert 0.006 < frame["tx_fraud"].mean() < 0.011
    assert set(frame["tx_fraud_scenario"].unique()) == {0, 1, 2, 3}


def test_deterministic_for_a_seed(small_world: SimulatorSettings, small_transactions: pd.DataFrame) -> None:
    again = simulate(small_world)
    pd.testing.assert_frame_equal(small_transactions, again)
    other = simulate(small_world.model_copy(update={"seed": small_world.seed + 1}))
    assert not other["tx_amount"].head(100).equals(small_transactions["tx_amount"].head(100))


def test_a_day_is_the_same_in_any_batch(
    small_world: SimulatorSettings, small_transactions: pd.DataFrame
) -> None:
    later = simulate(small_world, first_day=30, n_days=5)
    days = _day_index(small_transactions, small_world)
    expected = small_transactions[(days >= 30) & (days < 35)].reset_index(drop=True)
    pd.testing.assert_frame_equal(later, expected)


def test_scenario_1_amount_above_220(small_transactions: pd.DataFrame) -> None:
    high = small_transactions["tx_amount"] > 220
    assert high.any()
    assert (small_transactions.loc[high, "tx_fraud"] == 1).all()
    scenario_1 = small_transactions["tx_fraud_scenario"] == 1
    assert (small_transactions.loc[scenario_1, "tx_amount"] > 220).all()
    assert (small_transactions.loc[small_transactions["tx_fraud"] == 0, "tx_amount"] <= 220).all()


def test_scenario_2_compromised_terminals_for_28_days(
    small_world: SimulatorSettings, small_transactions: pd.DataFrame
) -> None:
    sim = Simulator(small_world)
    day = _day_index(small_transactions, small_world)
    terminal = small_transactions["terminal_id"].to_numpy()
    on_compromised = np.zeros(len(terminal), dtype=bool)
    for d in range(small_world.n_days):
        for t in sim.compromised_terminals(d):
            on_compromised |= (terminal == t) & (day >= d) & (day < d + 28)
    scenario = small_transactions["tx_fraud_scenario"].to_numpy()
    assert on_compromised.sum() > 100
    assert (small_transactions["tx_fraud"].to_numpy()[on_compromised] == 1).all()
    # scenario 2 exactly where a compromised terminal was used, unless scenario 3 overrode it
    assert ((scenario == 2) == (on_compromised & (scenario != 3))).all()
    # the 29th day after the compromise is no longer fraud by this scenario
    t0 = sim.compromised_terminals(0)
    after = np.isin(terminal, t0) & (day == 28) & ~on_compromised
    assert (scenario[after] != 2).all()


def test_scenario_3_compromised_customers_for_14_days(
    small_world: SimulatorSettings, small_transactions: pd.DataFrame
) -> None:
    sim = Simulator(small_world)
    # same world without the customer scenario: the amounts before the theft
    honest = simulate(small_world.model_copy(update={"compromised_customers_per_day": 0}))
    assert (honest["tx_fraud_scenario"] != 3).all()
    assert honest["transaction_id"].equals(small_transactions["transaction_id"])
    day = _day_index(small_transactions, small_world)
    customer = small_transactions["customer_id"].to_numpy()
    scenario = small_transactions["tx_fraud_scenario"].to_numpy()

    compromises = [(int(c), d) for d in range(small_world.n_days) for c in sim.compromised_customers(d)]
    in_any_period = np.zeros(len(day), dtype=bool)
    checked = 0
    for c, d in compromises:
        period = (customer == c) & (day >= d) & (day < d + 14)
        in_any_period |= period
        overlapping = [(c2, d2) for c2, d2 in compromises if c2 == c and d2 != d and abs(d2 - d) < 14]
        # a full period, not overlapping another compromise of the same customer
        if d + 14 <= small_world.n_days and not overlapping:
            assert (scenario[period] == 3).sum() == period.sum() // 3
            checked += 1
    assert checked > 50
    assert not ((scenario == 3) & ~in_any_period).any()

    stolen = scenario == 3
    ratio = small_transactions["tx_amount"].to_numpy()[stolen] / honest["tx_amount"].to_numpy()[stolen]
    assert np.allclose(ratio, 5, atol=0.01)
    untouched = ~stolen
    assert np.array_equal(
        small_transactions["tx_amount"].to_numpy()[untouched], honest["tx_amount"].to_numpy()[untouched]
    )


def test_stream_continues_the_batch(small_world: SimulatorSettings, small_transactions: pd.DataFrame) -> None:
    start = datetime(2018, 4, 1) + timedelta(days=40, hours=12)
    streamed = list(itertools.islice(stream_transactions(small_world, start), 300))
    batch = small_transactions[small_transactions["tx_datetime"] >= start].head(300)
    assert [s.event["transaction_id"] for s in streamed] == batch["transaction_id"].tolist()
    assert [s.event["tx_amount"] for s in streamed] == batch["tx_amount"].tolist()
    assert [s.tx_fraud_scenario for s in streamed] == batch["tx_fraud_scenario"].tolist()
    assert all(validate_event(event_to_json(s.event)).event == s.event for s in streamed)


def test_stream_stops_at_until_and_crosses_days(small_world: SimulatorSettings) -> None:
    start, until = datetime(2018, 4, 3, 20), datetime(2018, 4, 4, 4)
    events = [s.event for s in stream_transactions(small_world, start, until=until)]
    assert events and all(start <= e["tx_datetime"] < until for e in events)
    assert {e["tx_datetime"].day for e in events} == {3, 4}


def test_wallclock_stream_stamps_production_time(small_world: SimulatorSettings) -> None:
    now = datetime(2030, 1, 1, 8, 0, 0)
    item = next(stream_transactions(small_world, datetime(2018, 4, 2), clock="wallclock", now=lambda: now))
    assert item.event["tx_datetime"] == now


def test_stream_before_the_world_starts_on_day_0(small_world: SimulatorSettings) -> None:
    first = next(stream_transactions(small_world, datetime(2017, 1, 1)))
    assert first.event["tx_datetime"].date() == small_world.start_date


def test_paced_holds_the_rate() -> None:
    clock = {"t": 0.0}
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock["t"] += seconds

    out = list(paced(range(5), rate=10, clock=lambda: clock["t"], sleep=sleep))
    assert out == [0, 1, 2, 3, 4]
    assert clock["t"] == pytest.approx(0.4)
    with pytest.raises(ValueError):
        next(paced([1], rate=0))
