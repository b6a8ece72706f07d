from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from fraudops.config.model import Thresholds
from fraudops.decisions import decide
from fraudops.evaluation import (
    card_precision_at_k,
    card_precision_per_day,
    known_card_mask,
    protocol_metrics,
    scoring_latency,
    threshold_metrics,
    weekly_windows,
)
from fraudops.model_families import FraudModel


def test_decisions_are_inclusive_at_the_thresholds() -> None:
    t = Thresholds(review=0.5, block=0.9)
    assert decide(np.array([0.0, 0.4999, 0.5, 0.8999, 0.9, 1.0]), t).tolist() == [
        "APPROVE", "APPROVE", "REVIEW", "REVIEW", "BLOCK", "BLOCK",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="below"):
        Thresholds(review=0.9, block=0.5)


def test_card_precision_at_k_by_hand() -> None:
    rows = [
        # day, card, fraud, score
        ("2018-09-01 10:00", "A", 0, 0.30),
        ("2018-09-01 11:00", "A", 1, 0.10),  # A is compromised that day; its day score is its max, 0.30
        ("2018-09-01 12:00", "B", 0, 0.90),
        ("2018-09-01 13:00", "C", 1, 0.05),
        ("2018-09-02 10:00", "A", 0, 0.20),
        ("2018-09-02 11:00", "C", 1, 0.95),
        ("2018-09-02 12:00", "D", 1, 0.50),
        ("2018-09-02 13:00", "D", 0, 0.40),
    ]
    frame = pd.DataFrame(rows, columns=["t", "card", "fraud", "score"])
    args = (pd.to_datetime(frame["t"]), frame["card"], frame["fraud"].to_numpy(), frame["score"].to_numpy())
    # day 1 top-2 cards: B (0.90, genuine), A (0.30, compromised) -> 1/2; day 2: C, D -> 2/2
    assert card_precision_at_k(*args, k=2) == pytest.approx(0.75)
    # with k=3 a day with 3 cards: day1 {B,A,C} -> 2/3, day 2 {C,D,A} -> 2/3
    assert card_precision_at_k(*args, k=3) == pytest.approx(2 / 3)
    # capacity: with k=10 a day still divides by 10
    assert card_precision_at_k(*args, k=10) == pytest.approx((2 / 10 + 2 / 10) / 2)


def test_threshold_metrics_by_hand() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.95, 0.6, 0.1, 0.92, 0.7, 0.2, 0.1, 0.0])
    m = threshold_metrics(y, scores, Thresholds(review=0.5, block=0.9))
    # flagged at review: 0.95, 0.6, 0.92, 0.7 -> 2 frauds of 4; blocked: 0.95, 0.92 -> 1 of 2
    assert m == {
        "precision_at_review": 0.5,
        "recall_at_review": pytest.approx(2 / 3),
        "flag_rate_at_review": 0.5,
        "precision_at_block": 0.5,
        "recall_at_block": pytest.approx(1 / 3),
        "flag_rate_at_block": 0.25,
    }
    none = threshold_metrics(y, np.zeros(8), Thresholds())
    assert none["precision_at_review"] == 0.0 and none["recall_at_block"] == 0.0


class Costly:
    """A model whose every call burns ``cost_ms`` of CPU on the calling thread (a big model's cost)."""

    family = "xgboost"

    def __init__(self, cost_ms: float) -> None:
        self.cost_ns = int(cost_ms * 1e6)

    def predict(self, X: np.ndarray) -> np.ndarray:
        until = time.thread_time_ns() + self.cost_ns
        while time.thread_time_ns() < until:
            pass
        return X[:, 0]

    def single_threaded(self) -> Costly:
        return self


def test_scoring_latency_measures_the_model() -> None:
    result = scoring_latency(Costly(2.0), np.zeros((1000, 3), dtype=np.float32), single_rows=20, rounds=2)  # type: ignore[arg-type]
    assert result["single_row_cpu_p50_ms"] >= 2.0
    assert result["single_row_cpu_p99_ms"] >= result["single_row_cpu_p50_ms"]
    assert result["single_row_wall_p99_ms"] >= 2.0
    assert 0 < result["batch_rows_per_s"] < 1000 / 0.002


@pytest.fixture
def busy_cpus() -> Iterator[list[subprocess.Popen]]:
    """Two spinning processes per core for the duration of a test: the machine of a DAG run, worse."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        time.sleep(0.5)  # let them reach the run queue
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@pytest.fixture
def fast_model() -> tuple[FraudModel, np.ndarray]:
    """A real booster of the default depth, trained before the load starts."""
    import xgboost as xgb

    from fraudops.model_families import XGBoostModel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 15)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=2000) > 1.5).astype(int)
    booster = xgb.train(
        {"max_depth": 6, "nthread": 2, "objective": "binary:logistic"}, xgb.DMatrix(X, y), num_boost_round=50
    )
    return XGBoostModel(booster), X


def test_a_loaded_machine_does_not_reject_a_fast_model_but_a_slow_one_fails(
    fast_model: tuple[FraudModel, np.ndarray], busy_cpus: list[subprocess.Popen]
) -> None:
    from fraudops.config.pipeline import PromotionGates
    from fraudops.promotion import gate_failures

    model, X = fast_model
    # a gate a few times the real model's cost, well below a scheduler time slice (several ms): waiting
    # for a core inside a call would push a wall-clock p99 over it
    gates = PromotionGates(max_single_row_cpu_p99_ms=2.0)

    fast = scoring_latency(model, X, single_rows=300)
    slow = scoring_latency(Costly(5.0), X, single_rows=10, rounds=3)  # type: ignore[arg-type]

    assert all(s.poll() is None for s in busy_cpus), "the load ended before the measurement"
    latency = [f for f in gate_failures(fast, gates) if f.startswith("single_row")]
    assert latency == [], f"{latency} (wall p99 under load {fast['single_row_wall_p99_ms']:.2f} ms)"
    assert any(f.startswith("single_row_cpu_p99_ms") for f in gate_failures(slow, gates))


# -- the field's protocol -----------------------------------------------------------------------------------
def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["tx_datetime", "customer_id", "tx_fraud", "score"])
    frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"], format="ISO8601")
    return frame


def test_known_cards_are_those_with_a_fraud_delay_plus_one_days_before() -> None:
    history = _frame(
        [("2018-09-01 23:00", "A", 1, 0), ("2018-09-03 01:00", "B", 1, 0), ("2018-09-01", "C", 0, 0)]
    )
    test = _frame(
        [
            ("2018-09-03 12:00", "A", 0, 0),  # 09-03 - 3 d = 08-31: A's fraud of 09-01 is not known yet
            ("2018-09-04 00:00", "A", 0, 0),  # 09-04 - 3 d = 09-01: known
            ("2018-09-05 23:59", "B", 0, 0),  # 09-02 < 09-03: not known
            ("2018-09-06 00:00", "B", 0, 0),  # 09-03: known
            ("2018-09-10 00:00", "C", 0, 0),  # C never had a fraud
        ]
    )
    known = known_card_mask(
        test["tx_datetime"], test["customer_id"], history["tx_datetime"], history["customer_id"],
        history["tx_fraud"].to_numpy(), delay_days=2,
    )  # fmt: skip
    assert known.tolist() == [False, True, False, True, False]


def test_card_precision_drops_cards_detected_on_earlier_days() -> None:
    day = _frame(
        [
            ("2018-09-01 10:00", "A", 1, 0.90),
            ("2018-09-01 11:00", "B", 0, 0.80),
            ("2018-09-01 12:00", "C", 1, 0.10),  # day 1 top-2: A (detected), B -> 1/2
            ("2018-09-02 10:00", "A", 1, 0.95),  # A was detected: gone
            ("2018-09-02 11:00", "C", 1, 0.60),
            ("2018-09-02 12:00", "B", 0, 0.50),
            ("2018-09-02 13:00", "D", 0, 0.20),  # day 2 top-2: C (detected), B -> 1/2 (with A: 2/2)
            ("2018-09-03 10:00", "C", 1, 0.90),  # C was detected: gone
            ("2018-09-03 11:00", "D", 0, 0.30),  # day 3: D -> 0/2
        ]
    )
    per_day = card_precision_per_day(
        day["tx_datetime"], day["customer_id"], day["tx_fraud"].to_numpy(), day["score"].to_numpy(), k=2
    )
    assert per_day.tolist() == [0.5, 0.5, 0.0]


def test_protocol_metrics_by_hand() -> None:
    test = _frame(
        [
            # week 1
            ("2018-09-10 10:00", "A", 1, 0.9),
            ("2018-09-10 11:00", "B", 0, 0.8),
            ("2018-09-11 10:00", "C", 0, 0.3),
            ("2018-09-12 10:00", "A", 1, 0.2),  # A's fraud of 09-10 is known on 09-12 (delay 1): removed
            ("2018-09-12 11:00", "D", 1, 0.5),
            # week 2
            ("2018-09-17 10:00", "E", 0, 0.6),
            ("2018-09-17 11:00", "F", 1, 0.4),
            ("2018-09-17 12:00", "H", 0, 0.99),  # H's fraud of 09-05, in the history: removed
            ("2018-09-18 10:00", "A", 1, 0.9),  # removed
            ("2018-09-18 11:00", "G", 0, 0.1),
        ]
    )
    history = pd.concat([_frame([("2018-09-05 10:00", "H", 1, 0.0)]), test], ignore_index=True)
    m = protocol_metrics(
        test, test["score"].to_numpy(), history, pd.Timestamp("2018-09-10"), pd.Timestamp("2018-09-24"),
        delay_days=1, k=1,
    )  # fmt: skip
    assert m["protocol_removed_known_card_rows"] == 3
    assert m["protocol_weeks"] == 2
    # week 1 kept: A .9 (fraud), B .8, D .5 (fraud), C .3 -> AP (1 + 2/3) / 2, AUC 3/4;
    # CP@1 by day: 09-10 A -> 1, 09-11 C -> 0, 09-12 D -> 1
    assert m["protocol_week1_average_precision"] == pytest.approx(5 / 6)
    assert m["protocol_week1_auc_roc"] == pytest.approx(0.75)
    assert m["protocol_week1_card_precision_at_1"] == pytest.approx(2 / 3)
    # week 2 kept: E .6, F .4 (fraud), G .1 -> AP 1/2, AUC 1/2; CP@1: 09-17 E -> 0, 09-18 G -> 0
    assert m["protocol_week2_average_precision"] == pytest.approx(0.5)
    assert m["protocol_week2_auc_roc"] == pytest.approx(0.5)
    assert m["protocol_week2_card_precision_at_1"] == 0.0
    assert m["protocol_average_precision_mean"] == pytest.approx((5 / 6 + 0.5) / 2)
    assert m["protocol_average_precision_std"] == pytest.approx((5 / 6 - 0.5) / np.sqrt(2))
    assert m["protocol_auc_roc_mean"] == pytest.approx(0.625)
    assert m["protocol_card_precision_at_1_mean"] == pytest.approx(1 / 3)
    assert m["protocol_card_precision_at_1_std"] == pytest.approx((2 / 3) / np.sqrt(2))


def test_weekly_windows_cut_the_test_window() -> None:
    weeks = weekly_windows(pd.Timestamp("2018-09-01"), pd.Timestamp("2018-09-29"))
    assert [(a.day, b.day) for a, b in weeks] == [(1, 8), (8, 15), (15, 22), (22, 29)]
    assert weekly_windows(pd.Timestamp("2018-09-01"), pd.Timestamp("2018-09-11"))[-1][1].day == 11
