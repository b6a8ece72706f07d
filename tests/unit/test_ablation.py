"""The feature ablation: which sets it trains, that each run is logged and tagged, never registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudops.ablation import (
    ALL,
    BASELINE,
    AblationRun,
    FeatureSet,
    ablation_table,
    earns_its_keep,
    feature_sets,
    run_ablation,
)
from fraudops.config.model import ModelSettings, SplitSettings, TrainingSettings, XGBoostParams
from fraudops.features import BASELINE_FEATURES, FEATURE_NAMES

ADDED = FEATURE_NAMES[len(BASELINE_FEATURES) :]


def test_feature_sets_are_baseline_all_and_all_minus_each() -> None:
    sets = feature_sets(add_one=True)
    labels = [s.label for s in sets]
    assert labels[:2] == [BASELINE, ALL]
    by_label = {s.label: s.names for s in sets}
    assert by_label[BASELINE] == BASELINE_FEATURES and by_label[ALL] == FEATURE_NAMES
    if len(ADDED) > 1:
        for name in ADDED:
            assert name not in by_label[f"all - {name}"]
            assert len(by_label[f"all - {name}"]) == len(FEATURE_NAMES) - 1
            assert by_label[f"baseline + {name}"] == (*BASELINE_FEATURES, name)
    with pytest.raises(ValueError, match="tx_amount"):
        feature_sets(["tx_amount"])


def _run(family: str, label: str, ap: float) -> AblationRun:
    metrics = {
        "protocol_average_precision_mean": ap,
        "protocol_average_precision_std": 0.01,
        "protocol_card_precision_at_100_mean": 0.1,
        "protocol_card_precision_at_100_std": 0.01,
    }
    return AblationRun(family, FeatureSet(label, ("tx_amount",)), "0123456789", metrics)  # type: ignore[arg-type]


def test_a_feature_is_kept_only_if_dropping_it_lowers_ap_in_every_family() -> None:
    runs = [
        _run("xgboost", BASELINE, 0.60),
        _run("xgboost", ALL, 0.70),
        _run("xgboost", "all - a", 0.65),
        _run("xgboost", "all - b", 0.71),
        _run("catboost", BASELINE, 0.60),
        _run("catboost", ALL, 0.69),
        _run("catboost", "all - a", 0.62),
        _run("catboost", "all - b", 0.68),
    ]
    assert earns_its_keep(runs) == {"a": True, "b": False}
    table = ablation_table(runs).splitlines()
    assert len(table) == 2 + len(runs)
    assert "| xgboost | all - a | 1 | 0.6500 ± 0.0100 | +0.0500 | -0.0500 |" in table[4]


def test_runs_are_logged_tagged_and_not_registered(tmp_path: Path, small_features: pd.DataFrame) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sets = [FeatureSet(BASELINE, BASELINE_FEATURES)]
    runs = run_ablation(
        small_features,
        sets,
        families=["xgboost"],
        model_settings=ModelSettings(xgboost=XGBoostParams(n_estimators=30, max_depth=3)),
        training=TrainingSettings(
            experiment="ablation-unit",
            early_stopping_rounds=5,
            latency_rows=20,
            split=SplitSettings(train_days=21, validation_days=7, gap_days=7, test_days=7),
        ),
        tracking_uri=uri,
        artifact_location=str(tmp_path / "artifacts"),
    )
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert [r.feature_set.label for r in runs] == [BASELINE]
    for run in runs:
        logged = client.get_run(run.run_id)
        assert logged.data.tags["ablation.set"] == run.feature_set.label
        assert logged.data.params["features"] == ",".join(run.feature_set.names)
        assert "registered_version" not in logged.data.tags
        assert np.isfinite(logged.data.metrics["protocol_average_precision_mean"])
    assert client.search_registered_models() == []
