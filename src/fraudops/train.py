"""Training: a time-based split, one model family, an MLflow run, a registered model version.

Split, counted back from the end of the data (a day boundary)::

    | train (84 d) | validation (14 d) | gap = label delay (7 d) | test (28 d: four weekly test sets) |

The model is trained as it would be at the start of the test window: labels of the last ``gap`` days are
not known then, so training and validation stop before the gap. Validation drives early stopping (and the
optional search); the test window is out of time and touched only for the final evaluation.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fraudops import __version__
from fraudops.evaluation import Evaluation, ProtocolWindow, evaluate
from fraudops.features import FEATURE_NAMES, LABEL_DELAY_DAYS, TERMINAL_WINDOWS_DAYS, feature_matrix
from fraudops.model_config import (
    CatBoostParams,
    Family,
    ModelSettings,
    SplitSettings,
    TrainingSettings,
    XGBoostParams,
)
from fraudops.model_families import Dataset, FitOptions, FraudModel, fit, positive_weight

log = logging.getLogger(__name__)

# rows before this much history have truncated windows
BURN_IN_DAYS = max(TERMINAL_WINDOWS_DAYS) + LABEL_DELAY_DAYS


@dataclass(frozen=True)
class SplitWindows:
    train_start: pd.Timestamp
    validation_start: pd.Timestamp
    gap_start: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def masks(self, times: pd.Series) -> dict[str, np.ndarray]:
        t = times.to_numpy()
        return {
            "train": (t >= self.train_start) & (t < self.validation_start),
            "validation": (t >= self.validation_start) & (t < self.gap_start),
            "test": (t >= self.test_start) & (t < self.test_end),
        }

    def as_params(self) -> dict[str, str]:
        return {f"split_{k}": str(v.date()) for k, v in self.__dict__.items()}


def time_split(times: pd.Series, split: SplitSettings, end: pd.Timestamp | None = None) -> SplitWindows:
    """Windows ending at ``end`` (default: midnight after the last transaction)."""
    test_end = (
        pd.Timestamp(end) if end is not None else pd.Timestamp(times.max()).floor("D") + pd.Timedelta(days=1)
    )
    test_start = test_end - pd.Timedelta(days=split.test_days)
    gap_start = test_start - pd.Timedelta(days=split.gap_days)
    validation_start = gap_start - pd.Timedelta(days=split.validation_days)
    train_start = validation_start - pd.Timedelta(days=split.train_days)
    return SplitWindows(train_start, validation_start, gap_start, test_start, test_end)


def training_end(cutoff: pd.Timestamp) -> pd.Timestamp:
    """End of the out-of-time test window of a model trained at ``cutoff``: labels younger than the label
    delay are unknown then, so the window ends a delay earlier, at a day boundary."""
    return (pd.Timestamp(cutoff) - pd.Timedelta(days=LABEL_DELAY_DAYS)).floor("D")


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


def train_model(
    features: pd.DataFrame,
    *,
    model_settings: ModelSettings,
    training: TrainingSettings,
    tracking_uri: str,
    model_name: str,
    family: Family | None = None,
    data_snapshot: str = "",
    artifact_location: str | None = None,
    register: bool = True,
    end: pd.Timestamp | None = None,
    tags: Mapping[str, str] | None = None,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
) -> TrainingResult:
    """Train one family on a features frame (:func:`fraudops.features.build_features`), evaluate it out
    of time, log everything to MLflow and register the model as a new version of ``model_name``.
    ``feature_names`` other than the model's input vector are for ablations (such a model cannot serve)."""
    import mlflow
    from sklearn.metrics import average_precision_score

    from fraudops import tracking

    family = family or model_settings.family
    windows = time_split(features["tx_datetime"], training.split, end)
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

    fit_options = FitOptions(
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
    with mlflow.start_run(experiment_id=experiment, run_name=f"{family}-{windows.test_start:%Y%m%d}") as run:
        mlflow.set_tags({"family": family, "fraudops.version": __version__, **snapshot_tags})
        params: Params = model_settings.params_of(family)
        if training.search.enabled:
            space = getattr(training.search, family)
            best_ap = -1.0
            for i, candidate in enumerate(
                search_candidates(params, space, training.search.trials, training.seed)
            ):
                with mlflow.start_run(experiment_id=experiment, run_name=f"trial-{i}", nested=True):
                    trial = fit(family, train, valid, candidate, fit_options)
                    ap = float(average_precision_score(valid.y, trial.predict(valid.X)))
                    mlflow.log_params(candidate.model_dump())
                    mlflow.log_metric("validation_average_precision", ap)
                if ap > best_ap:
                    best_ap, params = ap, candidate

        start = time.perf_counter()
        model = fit(family, train, valid, params, fit_options)
        train_seconds = time.perf_counter() - start
        result = evaluate(
            model,
            test_frame,
            model_settings.thresholds,
            latency_rows=training.latency_rows,
            protocol=ProtocolWindow(windows.test_start, windows.test_end, features, LABEL_DELAY_DAYS),
        )

        run_params: dict[str, Any] = {
            "family": family,
            **{f"{family}_{k}": v for k, v in params.model_dump().items()},
            "class_weight": model_settings.class_weight,
            "positive_weight": round(positive_weight(train.y, model_settings.class_weight), 4),
            "early_stopping_rounds": training.early_stopping_rounds,
            "best_iteration": model.best_iteration,
            "threshold_review": model_settings.thresholds.review,
            "threshold_block": model_settings.thresholds.block,
            "label_delay_days": LABEL_DELAY_DAYS,
            "features": ",".join(feature_names),
            "train_rows": len(train.y),
            "validation_rows": len(valid.y),
            "search": training.search.enabled,
            "seed": training.seed,
            "data_snapshot": data_snapshot or "unrecorded",
            **windows.as_params(),
        }
        mlflow.log_params(run_params)
        metrics = {
            **result.metrics,
            "validation_average_precision": float(average_precision_score(valid.y, model.predict(valid.X))),
            "train_seconds": train_seconds,
            "train_fraud_rate": float(train.y.mean()),
        }
        mlflow.log_metrics(metrics)
        mlflow.log_dict(
            {"metrics": metrics, "params": run_params, "importance": model.importance()},
            "evaluation/summary.json",
        )
        tracking.log_figures(
            tracking.evaluation_figures(
                result.y, result.scores, model_settings.thresholds, model.importance()
            )
        )
        example = tracking.example_frame(feature_matrix(test_frame, feature_names), names=feature_names)
        signature = tracking.model_signature(example, model.predict(example.to_numpy()))
        if data_snapshot:
            tracking.log_snapshot_inputs(data_snapshot, snapshot_tags["data.fingerprint"], signature.inputs)
        info = model.log_to_mlflow(name="model", signature=signature, input_example=example)
        version = None
        if register:
            registered = tracking.register(
                info.model_uri,
                model_name,
                {
                    "family": family,
                    "run_id": run.info.run_id,
                    **snapshot_tags,
                    "test_window": f"{windows.test_start.date()}..{windows.test_end.date()}",
                    "auc_roc": f"{metrics['auc_roc']:.4f}",
                    "average_precision": f"{metrics['average_precision']:.4f}",
                },
            )
            version = str(registered.version)
            mlflow.set_tag("registered_version", version)
    return TrainingResult(
        family=family,
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        model_version=version,
        metrics=metrics,
        params=run_params,
        windows=windows,
        model=model,
        evaluation=result,
    )


def train_at_cutoff(features: pd.DataFrame, cutoff: pd.Timestamp, **kwargs: Any) -> TrainingResult:
    """Train as at ``cutoff`` on the features of the data known then (the DAG's extract, or
    :func:`known_at` of a file): the labelled rows, the split ending at :func:`training_end`. The DAG's
    train step and ``fraudops train --cutoff`` both come here, so they train the same model from the
    same data. ``kwargs`` are those of :func:`train_model`."""
    return train_model(labelled(features), end=training_end(cutoff), **kwargs)
