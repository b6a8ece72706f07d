"""Drift of recent traffic against the champion's training reference: population stability index (PSI)
per feature and of the score.

At training, :func:`reference_profile` summarizes the test window the model was evaluated on (its
features and its scores: decile edges and the share of rows between them) and the run logs it as
``drift/reference.json``. The daily check (:func:`check_drift`; the ``fraud_drift`` DAG and
``fraudops drift``) bins the scored traffic of the last ``drift.window_hours`` from
``transactions_with_score`` (the feature vector the model saw, and its score) on the same edges, computes
PSI per column, records the report in Postgres (``drift_reports``, read by the platform exporter for
Prometheus) and in MLflow, and says whether any column passed ``monitoring.alerts.drift_psi``: the DAG
then triggers the retraining DAG, and the DriftHigh alert fires.

The computation (:func:`reference_profile`, :func:`psi`, :func:`drift_report`) is pure.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SCORE = "score"
REFERENCE_ARTIFACT = "drift/reference.json"
# a bin no reference (or recent) row fell into counts as this share: PSI takes logarithms of shares
_EPSILON = 1e-4


@dataclass(frozen=True)
class ColumnProfile:
    # inner bin edges: bin i holds values in (edges[i-1], edges[i]]
    edges: list[float]
    shares: list[float]


def _bin_shares(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    values = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(np.asarray(edges), values, side="left"), minlength=len(edges) + 1)
    return counts / max(1, counts.sum())


def reference_profile(frame: pd.DataFrame, columns: Sequence[str], bins: int = 10) -> dict[str, Any]:
    """Edges at the quantiles of each column (at most ``bins`` bins; fewer when values repeat, as in a
    flag) and the share of rows in each bin."""
    profile: dict[str, Any] = {"rows": len(frame), "columns": {}}
    for column in columns:
        values = frame[column].to_numpy(np.float64)
        values = values[np.isfinite(values)]
        quantiles = np.linspace(0, 1, bins + 1)[1:-1]
        # edges are values the column took ("lower"), so a flag gets the edges 0 and 1, not 0.3
        edges = np.unique(np.quantile(values, quantiles, method="lower")) if len(values) else []
        profile["columns"][column] = asdict(
            ColumnProfile([float(e) for e in edges], [float(s) for s in _bin_shares(values, edges)])
        )
    return profile


def psi(reference: Sequence[float], recent: Sequence[float]) -> float:
    """Population stability index of two bin-share vectors: sum (recent - ref) * ln(recent / ref)."""
    ref = np.maximum(np.asarray(reference, dtype=np.float64), _EPSILON)
    now = np.maximum(np.asarray(recent, dtype=np.float64), _EPSILON)
    return float(np.sum((now - ref) * np.log(now / ref)))


@dataclass(frozen=True)
class DriftReport:
    model_name: str
    model_version: str
    rows: int
    threshold: float
    psi: dict[str, float] = field(default_factory=dict)
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def drifted(self) -> dict[str, float]:
        """The columns whose PSI reached the threshold."""
        return {c: v for c, v in self.psi.items() if v >= self.threshold}

    def summary(self) -> str:
        worst = sorted(self.psi.items(), key=lambda kv: -kv[1])[:3]
        state = f"DRIFT in {', '.join(self.drifted)}" if self.drifted else "no drift"
        top = ", ".join(f"{c} {v:.3f}" for c, v in worst)
        return (
            f"{state}: {self.rows:,} recent rows against {self.model_name} v{self.model_version} "
            f"(PSI >= {self.threshold:g} drifts; worst: {top})"
        )


def drift_report(
    profile: Mapping[str, Any],
    recent: pd.DataFrame,
    threshold: float,
    model_name: str = "",
    model_version: str = "",
) -> DriftReport:
    """PSI of every profiled column that ``recent`` holds."""
    values = {
        column: psi(spec["shares"], _bin_shares(recent[column].to_numpy(np.float64), spec["edges"]))
        for column, spec in profile["columns"].items()
        if column in recent.columns
    }
    return DriftReport(model_name, model_version, len(recent), threshold, values)


# -- I/O ------------------------------------------------------------------------------------------------


def load_reference(tracking_uri: str, model_name: str, alias: str) -> tuple[str, dict[str, Any]]:
    """(version, profile) of the model under ``alias``; raises LookupError when it logged none."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = client.get_model_version_by_alias(model_name, alias)
    mlflow.set_tracking_uri(tracking_uri)
    try:
        profile = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/{REFERENCE_ARTIFACT}")
    except Exception as exc:  # an older run, trained before references were logged
        raise LookupError(
            f"{model_name} v{version.version} logged no {REFERENCE_ARTIFACT}: retrain to get a reference"
        ) from exc
    return str(version.version), profile


def recent_scored(dsn: str, since: datetime, model_name: str) -> pd.DataFrame:
    """The feature vectors and scores of the transactions ``model_name`` (any version) scored since
    ``since``: another model's traffic (a test's, a shadow's) says nothing about this one's reference."""
    from fraudops import fraud_db

    with fraud_db.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT score, features FROM transactions_with_score "
            "WHERE scored_at >= %s AND model_name = %s AND features IS NOT NULL",
            (since, model_name),
        )
        rows = cur.fetchall()
    if not rows:
        return pd.DataFrame({SCORE: np.empty(0)})
    features = pd.DataFrame([r[1] if isinstance(r[1], dict) else json.loads(r[1]) for r in rows])
    return features.assign(**{SCORE: np.fromiter((r[0] for r in rows), np.float64, len(rows))})


def record_report(dsn: str, report: DriftReport) -> None:
    from fraudops import fraud_db

    with fraud_db.connect(dsn) as conn:
        with conn.cursor() as cur:
            for feature, value in report.psi.items():
                cur.execute(
                    "INSERT INTO drift_reports VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (report.checked_at, report.model_name, report.model_version, feature, value, report.rows),
                )
        conn.commit()


def latest_report(dsn: str) -> dict[str, float]:
    """PSI per column of the latest check (empty before the first)."""
    from fraudops import fraud_db

    with fraud_db.connect(dsn) as conn, conn.cursor() as cur:
        # read-only, and a database older than the table says "no report yet"
        cur.execute("SELECT to_regclass('drift_reports') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute(
            "SELECT feature, psi FROM drift_reports "
            "WHERE checked_at = (SELECT max(checked_at) FROM drift_reports)"
        )
        rows = cur.fetchall()
    return {feature: float(value) for feature, value in rows}


def log_to_mlflow(tracking_uri: str, experiment: str, report: DriftReport) -> str:
    import mlflow

    from fraudops.tracking import experiment_id, use_tracking_uri

    use_tracking_uri(tracking_uri)
    with mlflow.start_run(
        experiment_id=experiment_id(experiment), run_name=f"drift-{report.checked_at:%Y%m%dT%H%M}"
    ) as run:
        mlflow.set_tags(
            {
                "model_name": report.model_name,
                "model_version": report.model_version,
                "drifted": bool(report.drifted),
            }
        )
        mlflow.log_params({"rows": report.rows, "threshold": report.threshold})
        mlflow.log_metrics({f"psi_{column}": value for column, value in report.psi.items()})
        mlflow.log_dict({"psi": report.psi, "drifted": report.drifted}, "drift/report.json")
        return str(run.info.run_id)


def check_drift(
    settings: Any,
    secrets: Mapping[str, str],
    now: datetime | None = None,
    trigger: Callable[[DriftReport], None] | None = None,
) -> DriftReport:
    """The daily check: reference of the champion, recent scored traffic, PSI, recorded in Postgres and
    MLflow; ``trigger(report)`` is called when a column drifted (with enough recent rows to tell)."""
    from fraudops.connections import pipeline_dsn
    from fraudops.fraud_db import require_tables
    from fraudops.tracking import use_account

    # the pipeline's MLflow account: reads the champion's reference, logs the check's run
    use_account(secrets, "pipeline")
    d = settings.drift
    # the retraining pipeline's role: reads scored traffic, appends drift_reports; it creates neither
    dsn = pipeline_dsn(settings, secrets)
    require_tables(dsn, ["transactions_with_score", "drift_reports"])
    name = settings.mlflow.model_name
    version, profile = load_reference(settings.mlflow_tracking_uri, name, settings.mlflow.champion_alias)
    since = (now or datetime.now(UTC)) - timedelta(hours=d.window_hours)
    recent = recent_scored(dsn, since, name)
    report = drift_report(profile, recent, settings.monitoring.alerts.drift_psi, name, version)
    if report.rows < d.min_rows:
        log.info(
            "only %s rows scored since %s (< drift.min_rows %s): not judged", report.rows, since, d.min_rows
        )
        return DriftReport(name, version, report.rows, report.threshold)
    record_report(dsn, report)
    log_to_mlflow(settings.mlflow_tracking_uri, d.experiment, report)
    log.info("%s", report.summary())
    if report.drifted and trigger is not None:
        trigger(report)
    return report
