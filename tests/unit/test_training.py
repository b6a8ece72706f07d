"""Training, evaluation and MLflow logging on a small simulated set, against a local sqlite store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudops.config.model import (
    CatBoostParams,
    ModelSettings,
    SearchSettings,
    SplitSettings,
    TrainingSettings,
    XGBoostParams,
)
from fraudops.features import FEATURE_NAMES, feature_matrix
from fraudops.registry import MlflowRegistry
from fraudops.train import TrainingResult, search_candidates, time_split, train_model

MODEL_NAME = "fraud-detector"
MODEL = ModelSettings(
    xgboost=XGBoostParams(n_estimators=60, max_depth=4),
    catboost=CatBoostParams(iterations=80, depth=4),
)
TRAINING = TrainingSettings(
    experiment="unit-tests",
    early_stopping_rounds=10,
    latency_rows=50,
    split=SplitSettings(train_days=21, validation_days=7, gap_days=7, test_days=7),
)


class Store:
    def __init__(self, root: Path) -> None:
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.artifacts = str(root / "artifacts")

    def train(self, features: pd.DataFrame, **kwargs: object) -> TrainingResult:
        options: dict = dict(
            model_settings=MODEL,
            training=TRAINING,
            tracking_uri=self.uri,
            registry=MlflowRegistry(self.uri, MODEL_NAME, "champion", "previous"),
            data_snapshot="s3://fraud-lake/snapshots/unit.parquet",
            artifact_location=self.artifacts,
        )
        options.update(kwargs)
        return train_model(features, **options)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="module")
def trained(store: Store, small_features: pd.DataFrame) -> dict[str, TrainingResult]:
    return {family: store.train(small_features, family=family) for family in ("xgboost", "catboost")}


def _client(store: Store):  # noqa: ANN202
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)


def test_time_split_by_hand() -> None:
    times = pd.Series(pd.date_range("2018-04-01", "2018-09-30 23:59", freq="h"))
    w = time_split(times, SplitSettings(train_days=84, validation_days=14, gap_days=7, test_days=14))
    assert w.test_end == pd.Timestamp("2018-10-01")
    assert w.test_start == pd.Timestamp("2018-09-17")
    assert w.gap_start == pd.Timestamp("2018-09-10")
    assert w.validation_start == pd.Timestamp("2018-08-27")
    assert w.train_start == pd.Timestamp("2018-06-04")
    masks = w.masks(times)
    assert not (masks["train"] & masks["validation"]).any()
    gap = times[~(masks["train"] | masks["validation"] | masks["test"]) & (times >= w.train_start)]
    assert gap.min() == w.gap_start and gap.max() < w.test_start and len(gap) == 7 * 24


def test_registered_versions_with_tags(store: Store, trained: dict[str, TrainingResult]) -> None:
    client = _client(store)
    for family, result in trained.items():
        version = client.get_model_version(MODEL_NAME, result.model_version)
        assert version.run_id == result.run_id
        assert version.tags["family"] == family
        assert version.tags["data.snapshot"] == "s3://fraud-lake/snapshots/unit.parquet"
        assert len(version.tags["data.fingerprint"]) == 16
        assert (
            version.tags["test_window"]
            == f"{result.windows.test_start.date()}..{result.windows.test_end.date()}"
        )
    assert {trained["xgboost"].model_version, trained["catboost"].model_version} == {"1", "2"}


def test_runs_hold_params_metrics_plots_and_lineage(store: Store, trained: dict[str, TrainingResult]) -> None:
    client = _client(store)
    for family, result in trained.items():
        run = client.get_run(result.run_id)
        assert run.data.params["family"] == family
        assert run.data.params["data_snapshot"] == "s3://fraud-lake/snapshots/unit.parquet"
        assert run.data.params["features"] == ",".join(FEATURE_NAMES)
        assert run.data.params["split_test_start"] == str(result.windows.test_start.date())
        assert run.data.tags["registered_version"] == result.model_version
        assert run.data.metrics["auc_roc"] == pytest.approx(result.metrics["auc_roc"])
        # the protocol's figures go to MLflow next to the simple ones
        assert run.data.metrics["protocol_average_precision_mean"] == pytest.approx(
            result.metrics["protocol_average_precision_mean"]
        )
        assert 0 < result.metrics["protocol_average_precision_mean"] <= 1
        plots = {Path(a.path).name for a in client.list_artifacts(result.run_id, "plots")}
        assert plots == {
            "pr_curve.png", "roc_curve.png", "score_distribution.png", "feature_importance.png",
            "confusion_matrices.png",
        }  # fmt: skip
        for artifact in client.list_artifacts(result.run_id, "plots"):
            local = client.download_artifacts(result.run_id, artifact.path)
            assert Path(local).read_bytes()[:4] == b"\x89PNG"
        summary = json.loads(
            Path(client.download_artifacts(result.run_id, "evaluation/summary.json")).read_text()
        )
        assert set(summary["importance"]) == set(FEATURE_NAMES)
        assert sum(summary["importance"].values()) == pytest.approx(1.0)
        inputs = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
        assert set(inputs) == {"training", "testing"}
        assert "unit.parquet" in inputs["training"].source


def test_metrics_are_sane(trained: dict[str, TrainingResult], small_features: pd.DataFrame) -> None:
    for result in trained.values():
        m = result.metrics
        assert m["auc_roc"] > 0.7
        assert m["test_fraud_rate"] < m["average_precision"] <= 1
        for name in (
            "card_precision_at_100",
            "precision_at_review",
            "recall_at_review",
            "precision_at_block",
        ):
            assert 0 <= m[name] <= 1, name
        # a higher threshold flags fewer and catches fewer
        assert m["recall_at_block"] <= m["recall_at_review"]
        assert m["flag_rate_at_block"] <= m["flag_rate_at_review"]
        assert m["batch_rows_per_s"] > 1000
        assert 0 < m["single_row_cpu_p50_ms"] <= m["single_row_cpu_p99_ms"]
        assert m["train_seconds"] > 0
        in_test = result.windows.masks(small_features["tx_datetime"])["test"]
        assert m["test_rows"] == in_test.sum() == len(result.evaluation.y)


def test_logged_model_has_signature_example_and_reloads_natively(
    store: Store, trained: dict[str, TrainingResult], small_features: pd.DataFrame
) -> None:
    import mlflow

    from fraudops.registry import load_model

    mlflow.set_tracking_uri(store.uri)
    X = feature_matrix(small_features.tail(500))
    for family, result in trained.items():
        info = mlflow.models.get_model_info(f"models:/{MODEL_NAME}/{result.model_version}")
        assert family in info.flavors
        assert info.signature.inputs.input_names() == list(FEATURE_NAMES)
        assert info.saved_input_example_info is not None
        reloaded = load_model(f"models:/{MODEL_NAME}/{result.model_version}")
        assert reloaded.family == family
        np.testing.assert_allclose(reloaded.predict(X), result.model.predict(X), rtol=1e-6)


def test_search_keeps_the_best_trial(store: Store, small_features: pd.DataFrame) -> None:
    base = XGBoostParams(n_estimators=30)
    space = {"max_depth": [2, 3, 4], "learning_rate": [0.1, 0.3]}
    candidates = search_candidates(base, space, trials=4, seed=1)
    points = {(c.max_depth, c.learning_rate) for c in candidates}
    assert len(candidates) == 4 == len(points)
    assert all(isinstance(c.max_depth, int) and c.n_estimators == 30 for c in candidates)
    assert search_candidates(base, space, trials=4, seed=1) == candidates

    training = TRAINING.model_copy(
        update={"search": SearchSettings(enabled=True, trials=2, xgboost={"max_depth": [2, 3]})}
    )
    result = store.train(
        small_features,
        family="xgboost",
        training=training,
        model_settings=MODEL.model_copy(update={"xgboost": base}),
        registry=None,
    )
    assert result.model_version is None
    client = _client(store)
    children = client.search_runs(
        [client.get_run(result.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
    )
    assert len(children) == 2
    best = max(children, key=lambda r: r.data.metrics["validation_average_precision"])
    assert result.params["xgboost_max_depth"] == int(float(best.data.params["max_depth"]))


def test_a_window_without_fraud_is_refused(store: Store, small_features: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="needs both classes"):
        store.train(small_features.assign(tx_fraud=0), family="xgboost", registry=None)


def test_a_deleted_experiment_is_restored(tmp_path: Path) -> None:
    from fraudops import tracking

    store = Store(tmp_path)
    tracking.use_tracking_uri(store.uri)
    first = tracking.experiment_id("comes-back", store.artifacts)
    _client(store).delete_experiment(first)
    assert tracking.experiment_id("comes-back") == first
    assert _client(store).get_experiment(first).lifecycle_stage == "active"
