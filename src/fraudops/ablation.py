"""Feature ablation: does each feature beyond the handbook's 15 earn its keep under the field's protocol?

For each model family, the same split and settings as a normal training run are trained on several
feature sets: the 15 baseline features, the whole model input vector (:data:`FEATURE_NAMES`), the whole
vector minus each added feature, and optionally the baseline plus each added feature. Every run is
logged to MLflow (tag ``ablation.set``, never registered); the table compares the protocol's average
precision and card precision@100 (mean and standard deviation over the weekly test sets).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from fraudops.config.model import Family, ModelSettings, TrainingSettings
from fraudops.features import BASELINE_FEATURES, FEATURE_NAMES

log = logging.getLogger(__name__)

PRIMARY = "protocol_average_precision"
SECONDARY = "protocol_card_precision_at_100"
BASELINE = "baseline (15)"
ALL = "all"


@dataclass(frozen=True)
class FeatureSet:
    label: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class AblationRun:
    family: Family
    feature_set: FeatureSet
    run_id: str
    metrics: dict[str, float]

    def mean(self, metric: str) -> float:
        return self.metrics[f"{metric}_mean"]

    def std(self, metric: str) -> float:
        return self.metrics[f"{metric}_std"]


def feature_sets(
    candidates: Sequence[str] | None = None,
    *,
    baseline: tuple[str, ...] = BASELINE_FEATURES,
    add_one: bool = False,
) -> list[FeatureSet]:
    """Baseline, baseline plus every candidate (``all``), ``all`` minus each candidate and, with
    ``add_one``, the baseline plus each candidate. Candidates default to the features of
    :data:`FEATURE_NAMES` beyond the baseline."""
    added = (
        tuple(candidates) if candidates is not None else tuple(n for n in FEATURE_NAMES if n not in baseline)
    )
    unknown = [n for n in added if n not in FEATURE_NAMES or n in baseline]
    if unknown:
        raise ValueError(f"not a feature beyond the baseline: {', '.join(unknown)}")
    sets = [FeatureSet(BASELINE, baseline), FeatureSet(ALL, baseline + added)]
    if len(added) > 1:
        sets += [FeatureSet(f"all - {n}", baseline + tuple(a for a in added if a != n)) for n in added]
    if add_one and len(added) > 1:
        sets += [FeatureSet(f"baseline + {n}", (*baseline, n)) for n in added]
    return sets


def run_ablation(
    features: pd.DataFrame,
    sets: Sequence[FeatureSet],
    *,
    families: Sequence[Family],
    model_settings: ModelSettings,
    training: TrainingSettings,
    tracking_uri: str,
    artifact_location: str | None = None,
    data_snapshot: str = "",
) -> list[AblationRun]:
    """Train every family on every feature set (same split, settings and seed), each run logged to
    MLflow and tagged, none registered."""
    from fraudops.train import train_model

    runs = []
    for family in families:
        for fs in sets:
            result = train_model(
                features,
                model_settings=model_settings,
                training=training,
                tracking_uri=tracking_uri,
                family=family,
                data_snapshot=data_snapshot,
                artifact_location=artifact_location,
                tags={"ablation.set": fs.label, "ablation.features": str(len(fs.names))},
                feature_names=fs.names,
            )
            run = AblationRun(family, fs, result.run_id, result.metrics)
            log.info(
                "%s %s: protocol AP %.4f ± %.4f, CP@100 %.4f ± %.4f",
                family,
                fs.label,
                run.mean(PRIMARY),
                run.std(PRIMARY),
                run.mean(SECONDARY),
                run.std(SECONDARY),
            )
            runs.append(run)
    return runs


def ablation_table(runs: Sequence[AblationRun]) -> str:
    """A Markdown table: per family and feature set, the protocol AP and CP@100 (mean ± std over the
    weeks) and the change of the mean AP against the baseline and against ``all``."""
    lines = [
        "| family | features | n | protocol AP | Δ AP vs baseline | Δ AP vs all | protocol CP@100 | run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        ap = run.mean(PRIMARY)
        lines.append(
            f"| {run.family} | {run.feature_set.label} | {len(run.feature_set.names)} "
            f"| {ap:.4f} ± {run.std(PRIMARY):.4f} | {_delta(runs, run, BASELINE)} | {_delta(runs, run, ALL)} "
            f"| {run.mean(SECONDARY):.4f} ± {run.std(SECONDARY):.4f} | {run.run_id[:8]} |"
        )
    return "\n".join(lines)


def _delta(runs: Sequence[AblationRun], run: AblationRun, label: str) -> str:
    ref = [r for r in runs if r.family == run.family and r.feature_set.label == label]
    return f"{run.mean(PRIMARY) - ref[0].mean(PRIMARY):+.4f}" if ref else "n/a"


def earns_its_keep(runs: Sequence[AblationRun]) -> dict[str, bool]:
    """Per added feature: dropping it from ``all`` lowers the mean protocol AP in every family."""
    verdict: dict[str, bool] = {}
    for run in runs:
        if not run.feature_set.label.startswith("all - "):
            continue
        name = run.feature_set.label.removeprefix("all - ")
        full = next(r for r in runs if r.family == run.family and r.feature_set.label == ALL)
        lower = run.mean(PRIMARY) < full.mean(PRIMARY)
        verdict[name] = verdict.get(name, True) and lower
    return verdict
