"""Shared small worlds: big enough for every fraud scenario to show up, small enough for seconds."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd
import pytest

from fraudops.config.model import SimulatorSettings
from fraudops.features import build_features
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


@pytest.fixture(autouse=True)
def committed_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unit tests read configs/fraudops.yaml as committed: a FRAUDOPS_* override exported by the shell
    (other ports, say, to run a second stack beside one) does not leak into them."""
    for name in [n for n in os.environ if n.startswith("FRAUDOPS_") and n != "FRAUDOPS_HOME"]:
        monkeypatch.delenv(name)
    yield
