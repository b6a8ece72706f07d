"""The Great Expectations suite on small simulated snapshots: clean data passes, each corruption fails."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from fraudops.config.model import SimulatorSettings
from fraudops.config.pipeline import ValidationRules
from fraudops.simulator import simulate
from fraudops.validation import DataValidationError, validate_snapshot

RULES = ValidationRules(min_rows=1000)


@pytest.fixture(scope="module")
def snapshot() -> tuple[pd.DataFrame, pd.Timestamp]:
    frame = simulate(
        SimulatorSettings(n_customers=200, n_terminals=400, n_days=30, start_date=date(2026, 1, 1))
    )
    cutoff = frame["tx_datetime"].max().ceil("h")
    # labels are known a week late: the last week is unlabelled at the cutoff
    recent = frame["tx_datetime"] >= cutoff - pd.Timedelta(days=7)
    frame["tx_fraud"] = frame["tx_fraud"].astype("Float64").mask(recent)
    frame["tx_fraud_scenario"] = frame["tx_fraud_scenario"].astype("Float64").mask(recent)
    return frame, cutoff


def _failed(frame: pd.DataFrame, cutoff: pd.Timestamp, rules: ValidationRules = RULES) -> list[str]:
    report = validate_snapshot(frame, rules, cutoff)
    assert (report.docs / "index.html").exists()
    return report.failures


def test_a_clean_snapshot_passes(snapshot) -> None:
    frame, cutoff = snapshot
    report = validate_snapshot(frame, RULES, cutoff)
    assert report.success, report.failures
    assert report.evaluated >= 10
    report.raise_for_failure()


def test_duplicated_ids_fail(snapshot) -> None:
    frame, cutoff = snapshot
    failures = _failed(pd.concat([frame, frame.head(5)], ignore_index=True), cutoff)
    assert any("unique" in f and "transaction_id" in f for f in failures)


def test_null_and_out_of_range_amounts_fail(snapshot) -> None:
    frame, cutoff = snapshot
    bad = frame.copy()
    bad.loc[bad.index[:3], "tx_amount"] = np.nan
    bad.loc[bad.index[3:5], "tx_amount"] = -5.0
    failures = _failed(bad, cutoff)
    assert any("not_be_null on tx_amount" in f for f in failures)
    assert any("between on tx_amount" in f for f in failures)


def test_an_impossible_fraud_rate_fails(snapshot) -> None:
    frame, cutoff = snapshot
    bad = frame.copy()
    bad["tx_fraud"] = bad["tx_fraud"].where(bad["tx_fraud"].isna(), 1)
    failures = _failed(bad, cutoff)
    assert any("mean_to_be_between on tx_fraud" in f for f in failures)


def test_stale_data_too_few_rows_and_missing_labels_fail(snapshot) -> None:
    frame, cutoff = snapshot
    assert any("max_to_be_between on tx_datetime" in f for f in _failed(frame, cutoff + pd.Timedelta(days=5)))
    assert any("row_count" in f for f in _failed(frame, cutoff, RULES.model_copy(update={"min_rows": 10**7})))
    unlabelled = frame.assign(tx_fraud=frame["tx_fraud"].where(frame.index % 2 == 0))
    assert any("label_known_or_not_due" in f for f in _failed(unlabelled, cutoff))


def test_a_missing_column_fails_and_raises(snapshot) -> None:
    frame, cutoff = snapshot
    report = validate_snapshot(frame.drop(columns=["terminal_id"]), RULES, cutoff)
    with pytest.raises(DataValidationError, match="columns_to_match_set"):
        report.raise_for_failure()
