"""Drift: PSI per feature and of the score, on simulator streams. The same world a few weeks later does
not drift; a stream whose amounts shifted does, in the amount features and in the score, and the check
triggers retraining only then."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from fraudops.config.model import XGBoostParams
from fraudops.drift import SCORE, DriftReport, drift_report, psi, reference_profile
from fraudops.features import FEATURE_NAMES, build_features, feature_matrix
from fraudops.model_families import Dataset, fit_xgboost
from fraudops.monitoring.platform import PlatformCollector
from fraudops.simulator import simulate

COLUMNS = [*FEATURE_NAMES, SCORE]
THRESHOLD = 0.2


@pytest.fixture(scope="module")
def world(small_world, small_features):
    """A model trained on the first weeks of a small world, and its reference: the next two weeks."""
    features = small_features
    day = (features["tx_datetime"] - features["tx_datetime"].min()).dt.days
    train, reference = features[(day >= 30) & (day < 45)], features[(day >= 45) & (day < 55)]
    model = fit_xgboost(
        Dataset(feature_matrix(train), train["tx_fraud"].to_numpy()),
        Dataset(feature_matrix(reference), reference["tx_fraud"].to_numpy()),
        XGBoostParams(n_estimators=30, max_depth=3),
        class_weight="sqrt",
        threads=1,
        seed=1,
        early_stopping_rounds=30,
    )

    def scored(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(**{SCORE: model.predict(feature_matrix(frame))})

    later = features[day >= 55]
    return reference_profile(scored(reference), COLUMNS), scored, later, small_world


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi([0.25] * 4, [0.25] * 4) == 0
    small, large = psi([0.25] * 4, [0.3, 0.2, 0.25, 0.25]), psi([0.25] * 4, [0.7, 0.1, 0.1, 0.1])
    assert 0 < small < 0.1 < THRESHOLD < large
    # an empty bin on either side stays finite
    assert np.isfinite(psi([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]))


def test_reference_profile_bins_by_deciles() -> None:
    frame = pd.DataFrame({"x": np.arange(1000.0), "flag": np.r_[np.zeros(700), np.ones(300)]})
    profile = reference_profile(frame, ["x", "flag"])
    assert len(profile["columns"]["x"]["edges"]) == 9
    assert np.allclose(profile["columns"]["x"]["shares"], 0.1)
    # a flag's edges are its two values: a bin each, and one above them that new values would fill
    assert profile["columns"]["flag"]["edges"] == [0.0, 1.0]
    assert profile["columns"]["flag"]["shares"] == pytest.approx([0.7, 0.3, 0.0])
    assert profile["rows"] == 1000


def test_the_same_world_later_does_not_drift(world) -> None:
    profile, scored, later, _ = world
    report = drift_report(profile, scored(later), THRESHOLD, "m", "1")
    assert set(report.psi) == set(COLUMNS)
    assert report.drifted == {}, report.summary()


def test_a_shifted_stream_drifts_in_amounts_and_score(world) -> None:
    profile, scored, _, small_world = world
    # the same simulator, another stretch of time, every amount tripled (a currency change, a new segment)
    shifted_world = small_world.model_copy(update={"seed": 99, "n_days": 50})
    raw = simulate(shifted_world)
    raw["tx_amount"] = raw["tx_amount"] * 3
    features = build_features(raw)
    recent = features[features["tx_datetime"] >= features["tx_datetime"].min() + pd.Timedelta(days=40)]
    report = drift_report(profile, scored(recent), THRESHOLD, "m", "1")
    assert "tx_amount" in report.drifted
    assert any(name.startswith("customer_avg_amount") for name in report.drifted), report.summary()
    assert SCORE in report.drifted, report.summary()
    # the time of day does not move with the amounts
    assert "tx_during_night" not in report.drifted
    assert "DRIFT" in report.summary()


def test_report_marks_only_columns_at_or_over_the_threshold() -> None:
    report = DriftReport("m", "3", 1000, 0.2, {"a": 0.05, "b": 0.2, "c": 0.9}, datetime.now(UTC))
    assert report.drifted == {"b": 0.2, "c": 0.9}


def test_platform_collector_reports_each_source_and_survives_a_dead_one() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    def airflow_down(_dag_id: str):
        raise ConnectionError("refused")

    registry = CollectorRegistry()
    registry.register(
        PlatformCollector(
            "fraud-detector", lambda: 4, ["fraud_retraining"], airflow_down, lambda: {"score": 0.31}
        )
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    assert samples[("fraudops_champion_version", (("model", "fraud-detector"),))] == 4
    assert samples[("fraudops_drift_psi", (("feature", "score"),))] == 0.31
    assert samples[("fraudops_platform_source_up", (("source", "airflow"),))] == 0
    assert samples[("fraudops_platform_source_up", (("source", "mlflow"),))] == 1

    failed_run = {"state": "failed", "end_date": "2026-11-30T02:10:00Z"}
    registry = CollectorRegistry()
    registry.register(PlatformCollector("m", lambda: 0, ["fraud_retraining"], lambda d: failed_run, dict))
    text = generate_latest(registry).decode()
    assert 'fraudops_retraining_last_run_failed{dag_id="fraud_retraining"} 1.0' in text
    assert 'fraudops_champion_version{model="m"} 0.0' in text
