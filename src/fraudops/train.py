"""Training: a time-based split (:mod:`fraudops.windows`), one model family, an MLflow run, a registered
model version.

Validation drives early stopping (and the optional search); the test window is out of time and touched
only for the final evaluation. Fitting (:func:`fit_and_evaluate`) is apart from the MLflow logging
(:func:`log_training`) and the registration (:func:`register_version`).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops import __version__, drift
from fraudops.config.model import (
    CatBoostParams,
    Family,
    ModelSettings,
    SplitSettings,
    Thresholds,
    TrainingSettings,
    XGBoostParams,
)
from fraudops.evaluation import Evaluation, ProtocolWindow, evaluate
from fraudops.features import FEATURE_NAMES, LABEL_DELAY_DAYS, TERMINAL_WINDOWS_DAYS, feature_matrix
from fraudops.model_families import Dataset, FitOptions, FraudModel, fit, positive_weight
from fraudops.windows import SplitWindows, time_split, training_end

if TYPE_CHECKING:  # pragma: no cover
    from fraudops.registry import ModelRegistry

log = logging.getLogger(__name__)

# rows before this much history have truncated windows
BURN_IN_DAYS = max(TERMINAL_WINDOWS_DAYS) + LABEL_DELAY_DAYS


def known_at(transactions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The transactions before ``cutoff`` with only the labels known then (``tx_fraud`` NaN for those
    younger than the label delay): what the DAG's extract reads from the database, from a file."""
    before = transactions[transactions["tx_datetime"] < cutoff].copy()
    unknown = before["tx_datetime"] > pd.Timestamp(cutoff) - pd.Timedelta(days=LABEL_DELAY_DAYS)
    for label in ("tx_fraud", "tx_fraud_scenario"):
        if label in before.columns:
            before[label] = before[label].astype("float64").mask(unknown)
    return before


def labelled(features: pd.DataFrame) -> pd.DataFrame:
    """The rows whose label is known (what a model can be trained and evaluated on)."""
    return features[features["tx_fraud"].notna()].reset_index(drop=True)


def data_fingerprint(features: pd.DataFrame) -> str:
    """A short content hash of the rows and labels a model saw (lineage next to the snapshot URI)."""
    hashed = pd.util.hash_pandas_object(features.loc[:, ["transaction_id", "tx_fraud"]], index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:16]


def _dataset(frame: pd.DataFrame, names: tuple[str, ...] = FEATURE_NAMES) -> Dataset:
    return Dataset(feature_matrix(frame, names), frame["tx_fraud"].to_numpy(dtype=np.int64), names)


def _check(name: str, data: Dataset) -> None:
    positives = int(data.y.sum())
    if positives == 0 or positives == len(data.y):
        raise ValueError(
            f"the {name} window holds {len(data.y)} rows and {positives} frauds: it needs both classes"
        )


Params = XGBoostParams | CatBoostParams


def search_candidates(base: Params, space: dict[str, list[float]], trials: int, seed: int) -> list[Params]:
    """Up to ``trials`` distinct random points of the grid ``space`` around ``base``."""
    keys = sorted(space)
    grid = list(itertools.product(*(space[k] for k in keys)))
    np.random.default_rng(seed).shuffle(grid)
    return [
        type(base).model_validate({**base.model_dump(), **dict(zip(keys, point, strict=True))})
        for point in grid[:trials]
    ]


@dataclass
class TrainingResult:
    family: Family
    run_id: str
    model_uri: str
    model_version: str | None
    metrics: dict[str, float]
    params: dict[str, Any]
    windows: SplitWindows
    model: FraudModel = field(repr=False)
    evaluation: Evaluation = field(repr=False)


@dataclass
class Fitted:
    """A fitted model and what its evaluation and its MLflow run need."""

    family: Family
    params: Params
    model: FraudModel
    windows: SplitWindows
    train: Dataset
    valid: Dataset
    test_frame: pd.DataFrame
    evaluation: Evaluation
    train_seconds: float


def split_datasets(
    features: pd.DataFrame, split: SplitSettings, end: pd.Timestamp | None,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
) -> tuple[SplitWindows, Dataset, Dataset, pd.DataFrame]:  # fmt: skip
    """The windows, the train and validation sets (of ``feature_names``) and the test rows; each must
    hold both classes."""
    windows = time_split(features["tx_datetime"], split, end)
    masks = windows.masks(features["tx_datetime"])
    first = pd.Timestamp(features["tx_datetime"].min())
    if windows.train_start < first + pd.Timedelta(days=BURN_IN_DAYS):
        log.warning(
            "training starts %s, less than %d days after the data (%s): early windows are truncated",
            windows.train_start.date(),
            BURN_IN_DAYS,
            first.date(),
        )
    train = _dataset(features[masks["train"]], feature_names)
    valid = _dataset(features[masks["validation"]], feature_names)
    test_frame = features[masks["test"]]
    test = _dataset(test_frame, feature_names)
    for name, data in (("train", train), ("validation", valid), ("test", test)):
        _check(name, data)
    return windows, train, valid, test_frame


def search_params(
    family: Family, train: Dataset, valid: Dataset, training: TrainingSettings, base: Params,
    options: FitOptions, experiment: str,
) -> Params:  # fmt: skip
    """The search's best point by validation average precision (each trial a nested MLflow run)."""
    import mlflow
    from sklearn.metrics import average_precision_score

    best, best_ap = base, -1.0
    space = getattr(training.search, family)
    for i, candidate in enumerate(search_candidates(base, space, training.search.trials, training.seed)):
        with mlflow.start_run(experiment_id=experiment, run_name=f"trial-{i}", nested=True):
            trial = fit(family, train, valid, candidate, options)
            ap = float(average_precision_score(valid.y, trial.predict(valid.X)))
            mlflow.log_params(candidate.model_dump())
            mlflow.log_metric("validation_average_precision", ap)
        if ap > best_ap:
            best_ap, best = ap, candidate
    return best


def fit_and_evaluate(
    family: Family, params: Params, features: pd.DataFrame, data: tuple[SplitWindows, Dataset, Dataset,
    pd.DataFrame], model_settings: ModelSettings, training: TrainingSettings, options: FitOptions,
) -> Fitted:  # fmt: skip
    """Fit ``family`` with ``params`` and evaluate it on the out-of-time window."""
    windows, train, valid, test_frame = data
    start = time.perf_counter()
    model = fit(family, train, valid, params, options)
    train_seconds = time.perf_counter() - start
    result = evaluate(
        model,
        test_frame,
        model_settings.thresholds,
        latency_rows=training.latency_rows,
        protocol=ProtocolWindow(windows.test_start, windows.test_end, features, LABEL_DELAY_DAYS),
    )
    return Fitted(family, params, model, windows, train, valid, test_frame, result, train_seconds)


def run_params(
    fitted: Fitted, model_settings: ModelSettings, training: TrainingSettings, data_snapshot: str
) -> dict[str, Any]:
    family, params = fitted.family, fitted.params
    return {
        "family": family,
        **{f"{family}_{k}": v for k, v in params.model_dump().items()},
        "class_weight": model_settings.class_weight,
        "positive_weight": round(positive_weight(fitted.train.y, model_settings.class_weight), 4),
        "early_stopping_rounds": training.early_stopping_rounds,
        "best_iteration": fitted.model.best_iteration,
        "threshold_review": model_settings.thresholds.review,
        "threshold_block": model_settings.thresholds.block,
        "label_delay_days": LABEL_DELAY_DAYS,
        "features": ",".join(fitted.train.names),
        "train_rows": len(fitted.train.y),
        "validation_rows": len(fitted.valid.y),
        "search": training.search.enabled,
        "seed": training.seed,
        "data_snapshot": data_snapshot or "unrecorded",
        **fitted.windows.as_params(),
    }


def run_metrics(fitted: Fitted) -> dict[str, float]:
    from sklearn.metrics import average_precision_score

    valid = fitted.valid
    return {
        **fitted.evaluation.metrics,
        "validation_average_precision": float(
            average_precision_score(valid.y, fitted.model.predict(valid.X))
        ),
        "train_seconds": fitted.train_seconds,
        "train_fraud_rate": float(fitted.train.y.mean()),
    }


def log_training(
    fitted: Fitted, params: dict[str, Any], metrics: dict[str, float], thresholds: Thresholds,
    data_snapshot: str, fingerprint: str,
) -> Any:  # fmt: skip
    """Log the run's parameters, metrics, plots, inputs and model (in the active run); the ``ModelInfo``."""
    import mlflow

    from fraudops import tracking

    model = fitted.model
    mlflow.log_params(params)
    mlflow.log_metrics(metrics)
    mlflow.log_dict(
        {"metrics": metrics, "params": params, "importance": model.importance()}, "evaluation/summary.json"
    )
    result = fitted.evaluation
    names = fitted.train.names
    # the champion's drift reference (fraudops.drift): its test window's features and scores
    mlflow.log_dict(
        drift.reference_profile(
            fitted.test_frame.assign(**{drift.SCORE: result.scores}), [*names, drift.SCORE]
        ),
        drift.REFERENCE_ARTIFACT,
    )
    tracking.log_figures(tracking.evaluation_figures(result.y, result.scores, thresholds, model.importance()))
    example = tracking.example_frame(feature_matrix(fitted.test_frame, names), names=names)
    signature = tracking.model_signature(example, model.predict(example.to_numpy()))
    if data_snapshot:
        tracking.log_snapshot_inputs(data_snapshot, fingerprint, signature.inputs)
    return model.log_to_mlflow(name="model", signature=signature, input_example=example)


def register_version(
    registry: ModelRegistry, model_uri: str, run_id: str, fitted: Fitted, metrics: Mapping[str, float],
    snapshot_tags: Mapping[str, str],
) -> str:  # fmt: skip
    registered = registry.register(
        model_uri,
        {
            "family": fitted.family,
            "run_id": run_id,
            **snapshot_tags,
            "test_window": fitted.windows.test_text,
            "auc_roc": f"{metrics['auc_roc']:.4f}",
            "average_precision": f"{metrics['average_precision']:.4f}",
        },
    )
    return registered.version


def train_model(
    features: pd.DataFrame,
    *,
    model_settings: ModelSettings,
    training: TrainingSettings,
    tracking_uri: str,
    registry: ModelRegistry | None = None,
    family: Family | None = None,
    data_snapshot: str = "",
    artifact_location: str | None = None,
    end: pd.Timestamp | None = None,
    tags: Mapping[str, str] | None = None,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
) -> TrainingResult:
    """Train one family on a features frame (:func:`fraudops.features.build_features`), evaluate it out
    of time, log everything to MLflow and, given a ``registry``, register the model as a new version.
    ``feature_names`` other than the model's input vector are for ablations (such a model cannot serve)."""
    import mlflow

    from fraudops import tracking

    family = family or model_settings.family
    data = split_datasets(features, training.split, end, feature_names)
    options = FitOptions(
        class_weight=model_settings.class_weight,
        threads=training.threads,
        seed=training.seed,
        early_stopping_rounds=training.early_stopping_rounds,
    )
    tracking.use_tracking_uri(tracking_uri)
    experiment = tracking.experiment_id(training.experiment, artifact_location)
    snapshot_tags = {
        "data.snapshot": data_snapshot or "unrecorded",
        "data.fingerprint": data_fingerprint(features),
        **(tags or {}),
    }
    windows = data[0]
    with mlflow.start_run(experiment_id=experiment, run_name=f"{family}-{windows.test_start:%Y%m%d}") as run:
        mlflow.set_tags({"family": family, "fraudops.version": __version__, **snapshot_tags})
        params: Params = model_settings.params_of(family)
        if training.search.enabled:
            params = search_params(family, data[1], data[2], training, params, options, experiment)
        fitted = fit_and_evaluate(family, params, features, data, model_settings, training, options)
        logged_params, metrics = (
            run_params(fitted, model_settings, training, data_snapshot),
            run_metrics(fitted),
        )
        info = log_training(
            fitted, logged_params, metrics, model_settings.thresholds, data_snapshot,
            snapshot_tags["data.fingerprint"],
        )  # fmt: skip
        version = None
        if registry is not None:
            version = register_version(
                registry, info.model_uri, run.info.run_id, fitted, metrics, snapshot_tags
            )
            mlflow.set_tag("registered_version", version)
    return TrainingResult(
        family=family,
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        model_version=version,
        metrics=metrics,
        params=logged_params,
        windows=windows,
        model=fitted.model,
        evaluation=fitted.evaluation,
    )


def train_at_cutoff(features: pd.DataFrame, cutoff: pd.Timestamp, **kwargs: Any) -> TrainingResult:
    """Train as at ``cutoff`` on the features of the data known then (the DAG's extract, or
    :func:`known_at` of a file): the labelled rows, the split ending at :func:`training_end`. The DAG's
    train step and ``fraudops train --cutoff`` both come here, so they train the same model from the
    same data. ``kwargs`` are those of :func:`train_model`."""
    return train_model(labelled(features), end=training_end(cutoff), **kwargs)
