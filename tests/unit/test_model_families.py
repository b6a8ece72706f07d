"""The two families' fits: what early stopping watches and the resolution of their splits."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
from sklearn.metrics import average_precision_score

from fraudops.config.model import CatBoostParams, XGBoostParams
from fraudops.model_families import Dataset, FitOptions, fit

NAMES = ("signal", "noise")


def _data(seed: int, n: int = 20_000, separation: float = 3.0) -> Dataset:
    """1 % positives, ranked by a noisy signal: an AP far from both 0 and 1."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.01).astype(np.int64)
    X = np.column_stack([y * separation + rng.normal(size=n), rng.normal(size=n)]).astype(np.float32)
    return Dataset(X, y, NAMES)


def test_catboost_early_stopping_keeps_the_trees_that_rank_best() -> None:
    # the first trees' tied scores once looked best to CatBoost's (class-weighted) PRAUC, so early
    # stopping kept a single tree
    train, valid = _data(1, separation=2.0), _data(2, separation=2.0)
    params = CatBoostParams(iterations=60, depth=6)
    options = FitOptions(class_weight="sqrt", threads=1, seed=0, early_stopping_rounds=10)
    model = fit("catboost", train, valid, params, options)
    # the same fit without early stopping: the best its trees ever rank the validation rows
    full = fit("catboost", train, valid, params, replace(options, early_stopping_rounds=params.iterations))
    staged = [average_precision_score(valid.y, p[:, 1]) for p in full.model.staged_predict_proba(valid.X)]
    kept = average_precision_score(valid.y, model.predict(valid.X))
    assert model.best_iteration > 10
    assert kept >= max(staged[5:]) - 0.02


def test_xgboost_bins_follow_the_settings() -> None:
    train, valid = _data(3), _data(4)
    options = FitOptions(class_weight="none", threads=1, seed=0, early_stopping_rounds=5)
    for bins in (64, 1024):
        model = fit("xgboost", train, valid, XGBoostParams(n_estimators=5, max_bin=bins), options)
        assert set(_values_of("max_bin", json.loads(model.booster.save_config()))) == {str(bins)}


def _values_of(key: str, tree: object) -> list[object]:
    if isinstance(tree, dict):
        nested = [x for v in tree.values() for x in _values_of(key, v)]
        return [v for k, v in tree.items() if k == key] + nested
    return []
