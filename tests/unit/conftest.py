"""Shared small worlds: big enough for every fraud scenario to show up, small enough for seconds."""

from __future__ import annotations

import pandas as pd
import pytest

from fraudops.features import build_features
from fraudops.model_config import SimulatorSettings
from fraudops.simulator import simulate

# ~1,000 transactions a day; ~3 reachable terminals per customer
SMALL_WORLD = SimulatorSettings(n_customers=500, n_terminals=1000, n_days=70, seed=7)


@pytest.fixture(scope="session")
def small_world() -> SimulatorSettings:
    return SMALL_WORLD


@pytest.fixture(scope="session")
def small_transactions(small_world: SimulatorSettings) -> pd.DataFrame:
    return simulate(small_world)


@pytest.fixture(scope="session")
def small_features(small_transactions: pd.DataFrame) -> pd.DataFrame:
    return build_features(small_transactions)
