"""The model families behind one small interface: fit with early stopping, score, explain, log, load.

Scoring goes through the native boosters (``Booster.inplace_predict``, ``CatBoostClassifier``), never
the MLflow pyfunc wrapper, which costs milliseconds per call on the hot path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

import numpy as np

from fraudops.config.model import CatBoostParams, ClassWeight, Family, XGBoostParams
from fraudops.features import FEATURE_NAMES


@dataclass(frozen=True)
class Dataset:
    X: np.ndarray
    y: np.ndarray
    # the columns of X (an ablation trains on fewer than the model's input vector)
    names: tuple[str, ...] = FEATURE_NAMES


class FraudModel(Protocol):
    family: Family

    @property
    def best_iteration(self) -> int: ...

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's input columns, in order: :data:`FEATURE_NAMES` as of its training (a model trained
        before features were added reads fewer; an ablation's model other ones)."""
        ...

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability for each row of ``X`` (columns in :attr:`feature_names` order)."""
        ...

    def importance(self) -> dict[str, float]:
        """Feature -> share of the model's total importance (sums to 1)."""
        ...

    def single_threaded(self) -> FraudModel:
        """The same model scoring on the calling thread only (what a latency measurement times)."""
        ...

    def log_to_mlflow(self, *, name: str, signature: Any, input_example: Any) -> Any:
        """Log with the family's MLflow flavor; returns the ``ModelInfo``."""
        ...


def positive_weight(y: np.ndarray, class_weight: ClassWeight) -> float:
    """Weight of a fraud example relative to a genuine one."""
    positives = int(np.sum(y))
    if class_weight == "none" or positives == 0:
        return 1.0
    ratio = (len(y) - positives) / positives
    return ratio if class_weight == "balanced" else math.sqrt(ratio)


def _normalized(scores: dict[str, float], names: list[str]) -> dict[str, float]:
    total = sum(scores.values())
    return {name: (scores.get(name, 0.0) / total if total else 0.0) for name in names}


def _requirement(*distributions: str) -> str:
    for dist in distributions:
        try:
            return f"{dist}=={metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return distributions[-1]


def _pip_requirements(library: str) -> list[str]:
    # explicit, so that logging does not spend ~10 s inferring them in a subprocess
    return [library, _requirement("numpy"), _requirement("pandas"), _requirement("mlflow")]


# -- XGBoost -------------------------------------------------------------------------------------------


@dataclass
class XGBoostModel:
    booster: Any  # xgboost.Booster
    family: Family = "xgboost"

    @property
    def best_iteration(self) -> int:
        return self.booster.num_boosted_rounds()

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.booster.feature_names or FEATURE_NAMES)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(X)

    def single_threaded(self) -> XGBoostModel:
        booster = self.booster.copy()  # the shared booster keeps its threads for batch scoring
        booster.set_param({"nthread": 1})
        return XGBoostModel(booster)

    def importance(self) -> dict[str, float]:
        return _normalized(self.booster.get_score(importance_type="total_gain"), list(self.feature_names))

    def log_to_mlflow(self, *, name: str, signature: Any, input_example: Any) -> Any:
        import mlflow.xgboost

        return mlflow.xgboost.log_model(
            self.booster,
            name=name,
            signature=signature,
            input_example=input_example,
            pip_requirements=_pip_requirements(_requirement("xgboost-cpu", "xgboost")),
        )


def fit_xgboost(
    train: Dataset,
    valid: Dataset,
    params: XGBoostParams,
    *,
    class_weight: ClassWeight,
    threads: int,
    seed: int,
    early_stopping_rounds: int,
) -> XGBoostModel:
    import xgboost as xgb

    names = list(train.names)
    bins = params.max_bin
    dtrain = xgb.QuantileDMatrix(train.X, label=train.y, feature_names=names, nthread=threads, max_bin=bins)
    dvalid = xgb.QuantileDMatrix(
        valid.X, label=valid.y, feature_names=names, ref=dtrain, nthread=threads, max_bin=bins
    )
    booster = xgb.train(
        {
            "objective": "binary:logistic",
            "tree_method": "hist",
            # early stopping watches the last metric: average precision suits a 1:120 imbalance
            "eval_metric": ["auc", "aucpr"],
            "max_depth": params.max_depth,
            "eta": params.learning_rate,
            "subsample": params.subsample,
            "colsample_bytree": params.colsample_bytree,
            "min_child_weight": params.min_child_weight,
            "lambda": params.reg_lambda,
            "max_bin": bins,
            "scale_pos_weight": positive_weight(train.y, class_weight),
            "nthread": threads,
            "seed": seed,
        },
        dtrain,
        num_boost_round=params.n_estimators,
        evals=[(dvalid, "validation")],
        early_stopping_rounds=early_stopping_rounds,
        verbose_eval=False,
    )
    # keep only the trees up to the best round, so every consumer scores with the early-stopped model
    best = getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1)
    return XGBoostModel(booster[: best + 1])


# -- CatBoost ------------------------------------------------------------------------------------------

_CATBOOST_WEIGHTS = {"balanced": "Balanced", "sqrt": "SqrtBalanced", "none": None}


@dataclass
class CatBoostModel:
    model: Any  # catboost.CatBoostClassifier
    family: Family = "catboost"
    # -1: every core
    threads: int = -1

    @property
    def best_iteration(self) -> int:
        return int(self.model.tree_count_)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.model.feature_names_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(X, prediction_type="Probability", thread_count=self.threads)[:, 1]

    def single_threaded(self) -> CatBoostModel:
        return CatBoostModel(self.model, threads=1)

    def importance(self) -> dict[str, float]:
        values = self.model.get_feature_importance()
        names = list(self.model.feature_names_)
        return _normalized(dict(zip(names, map(float, values), strict=True)), names)

    def log_to_mlflow(self, *, name: str, signature: Any, input_example: Any) -> Any:
        import mlflow.catboost

        return mlflow.catboost.log_model(
            self.model,
            name=name,
            signature=signature,
            input_example=input_example,
            pip_requirements=_pip_requirements(_requirement("catboost")),
        )


def fit_catboost(
    train: Dataset,
    valid: Dataset,
    params: CatBoostParams,
    *,
    class_weight: ClassWeight,
    threads: int,
    seed: int,
    early_stopping_rounds: int,
) -> CatBoostModel:
    from catboost import CatBoostClassifier, Pool

    names = list(train.names)
    model = CatBoostClassifier(
        iterations=params.iterations,
        depth=params.depth,
        learning_rate=params.learning_rate,
        l2_leaf_reg=params.l2_leaf_reg,
        border_count=params.border_count,
        loss_function="Logloss",
        # early stopping on the validation log loss: CatBoost's PRAUC weighs the rows by the class weights
        # and scores tied predictions optimistically, so it could peak at the first trees and the fit kept
        # one (protocol AP 0.47-0.50 where the full fit reaches 0.70, the AP 0.54 of issue 17)
        eval_metric="Logloss",
        auto_class_weights=_CATBOOST_WEIGHTS[class_weight],
        thread_count=threads,
        random_seed=seed,
        use_best_model=True,
        early_stopping_rounds=early_stopping_rounds,
        allow_writing_files=False,
        verbose=False,
    )
    model.fit(
        Pool(train.X, train.y, feature_names=names), eval_set=Pool(valid.X, valid.y, feature_names=names)
    )
    return CatBoostModel(model)


@dataclass(frozen=True)
class FitOptions:
    class_weight: ClassWeight
    threads: int
    seed: int
    early_stopping_rounds: int


def fit(
    family: Family,
    train: Dataset,
    valid: Dataset,
    params: XGBoostParams | CatBoostParams,
    options: FitOptions,
) -> FraudModel:
    """Fit ``family`` on ``train``, early-stopped on ``valid``."""
    kwargs = dict(options.__dict__)
    if family == "xgboost" and isinstance(params, XGBoostParams):
        return fit_xgboost(train, valid, params, **kwargs)
    if family == "catboost" and isinstance(params, CatBoostParams):
        return fit_catboost(train, valid, params, **kwargs)
    raise TypeError(f"{type(params).__name__} are not parameters of {family}")
