"""Champion handling: the last-known-good copy round-trips, and a scorer whose registry cannot be reached
starts from it (a real MLflow client against a closed port, no fake)."""

from __future__ import annotations

import numpy as np
import pytest

from fraudops.config.model import XGBoostParams
from fraudops.features import feature_matrix
from fraudops.model_families import Dataset, fit_xgboost
from fraudops.registry import MlflowRegistry
from fraudops.scoring.champion import (
    ChampionWatcher,
    LoadedModel,
    ModelInfo,
    load_last_known_good,
    save_last_known_good,
)


@pytest.fixture(scope="module")
def tiny_model(small_features):
    X, y = feature_matrix(small_features), small_features["tx_fraud"].to_numpy()
    return fit_xgboost(
        Dataset(X[:5000], y[:5000]),
        Dataset(X[5000:8000], y[5000:8000]),
        XGBoostParams(n_estimators=10, max_depth=3),
        class_weight="sqrt",
        threads=1,
        seed=1,
        early_stopping_rounds=10,
    ), X[:200]


def test_last_known_good_round_trip(tmp_path, tiny_model) -> None:
    model, X = tiny_model
    for version in ("3", "4", "5"):
        save_last_known_good(tmp_path, LoadedModel(ModelInfo("m", version, "xgboost", "run"), model))
    loaded = load_last_known_good(tmp_path, "m")
    assert loaded.info.version == "5" and loaded.info.source == "last-known-good"
    np.testing.assert_allclose(loaded.model.predict(X), model.predict(X), rtol=1e-6)
    # the current copy and one previous one are kept
    assert sorted(p.name for p in (tmp_path / "m").glob("v*")) == ["v4", "v5"]


def test_unreachable_registry_starts_from_last_known_good(tmp_path, tiny_model, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    model, _ = tiny_model
    dead = MlflowRegistry("http://127.0.0.1:9", "m", "champion", "previous")  # discard port: nobody listens
    watcher = ChampionWatcher(dead, tmp_path, poll_interval_s=3600)
    with pytest.raises(RuntimeError, match="no champion"):
        watcher.start()
    save_last_known_good(tmp_path, LoadedModel(ModelInfo("m", "7", "xgboost"), model))
    watcher = ChampionWatcher(dead, tmp_path, poll_interval_s=3600)
    try:
        assert watcher.start().info.version == "7"
        assert watcher.for_batch().info.source == "last-known-good"
    finally:
        watcher.stop()


def test_a_staged_model_takes_over_only_at_the_next_batch(tmp_path, tiny_model) -> None:
    model, _ = tiny_model
    watcher = ChampionWatcher(
        MlflowRegistry("http://127.0.0.1:9", "m", "champion", "previous"), tmp_path, 3600
    )
    watcher.current = LoadedModel(ModelInfo("m", "1", "xgboost"), model)
    batch_model = watcher.for_batch()
    watcher._staged = LoadedModel(ModelInfo("m", "2", "xgboost"), model)
    assert batch_model.info.version == "1"  # the running batch keeps its model
    assert watcher.for_batch().info.version == "2" and watcher.swaps == 1


def test_a_last_known_good_copy_of_other_features_is_refused(tmp_path, tiny_model) -> None:
    import json

    from fraudops.registry import SignatureMismatch

    model, _ = tiny_model
    target = save_last_known_good(tmp_path, LoadedModel(ModelInfo("m", "3", "xgboost"), model))
    meta = json.loads((target / "meta.json").read_text())
    (target / "meta.json").write_text(json.dumps({**meta, "features": [*meta["features"][:-1], "retired"]}))
    with pytest.raises(SignatureMismatch, match="last-known-good copy"):
        load_last_known_good(tmp_path, "m")


def test_a_champion_of_unknown_inputs_is_refused_counted_and_the_current_model_kept(
    tmp_path, tiny_model
) -> None:
    from prometheus_client import generate_latest

    from fraudops.config.settings import load_settings
    from fraudops.monitoring.metrics import SCORER_REFUSED, ScorerMetrics
    from memory_resources import MemoryRegistry

    model, _ = tiny_model
    registry = MemoryRegistry(load_settings())
    good = registry.add(model)
    registry.set_champion(good)
    metrics = ScorerMetrics()
    watcher = ChampionWatcher(registry, tmp_path, 3600, on_refused=metrics.record_refused)
    watcher.current = watcher._fetch()
    bad = registry.add(model, inputs=["tx_amount", "retired_feature"])
    registry.set_champion(bad)
    watcher.poll_once()
    assert watcher.for_batch().info.version == good and watcher.swaps == 0
    # the last-known-good copy on disk is still the good one
    assert load_last_known_good(tmp_path, registry.model_name).info.version == good
    exported = generate_latest(metrics.registry).decode()
    assert f'{SCORER_REFUSED}_total{{reason="signature",version="{bad}"}} 1.0' in exported
