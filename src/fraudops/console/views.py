"""Pure shaping of what the console shows: decision rates, throughput and latency over time, the score
histogram, reason codes from SHAP contributions, and links. No I/O: unit-tested on static frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraudops.decisions import DECISIONS
from fraudops.features import FEATURE_NAMES


def decision_rates(counts: pd.DataFrame) -> pd.DataFrame:
    """From (bucket, decision, n) rows: per bucket, the share of each decision (columns = DECISIONS)."""
    if counts.empty:
        return pd.DataFrame(columns=list(DECISIONS), dtype=float)
    wide = counts.pivot_table(index="bucket", columns="decision", values="n", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=list(DECISIONS), fill_value=0).astype(float)
    return wide.div(wide.sum(axis=1), axis=0)


def throughput(counts: pd.DataFrame, bucket_seconds: float) -> pd.DataFrame:
    """Per bucket: transactions per second, the count-weighted mean latency, and the largest of the
    per-decision p95 latencies (an upper bound of the bucket's p95: percentiles do not add up)."""
    if counts.empty:
        return pd.DataFrame(columns=["tx_per_s", "latency_mean_ms", "latency_p95_ms"], dtype=float)
    frame = counts.assign(weighted=counts["latency_mean_ms"].astype(float) * counts["n"])
    grouped = frame.groupby("bucket")
    out = pd.DataFrame(
        {
            "tx_per_s": grouped["n"].sum() / bucket_seconds,
            "latency_mean_ms": grouped["weighted"].sum() / grouped["n"].sum(),
            "latency_p95_ms": grouped["latency_p95_ms"].max().astype(float),
        }
    )
    return out


def histogram(bins_frame: pd.DataFrame, bins: int = 20) -> pd.DataFrame:
    """Every bin from 1 to ``bins`` with its count (empty bins included), labelled by its lower edge."""
    counts = np.zeros(bins, dtype=np.int64)
    for b, n in zip(bins_frame.get("bin", []), bins_frame.get("n", []), strict=True):
        if 1 <= int(b) <= bins:
            counts[int(b) - 1] += int(n)
    edges = np.round(np.arange(bins) / bins, 3)
    return pd.DataFrame({"score_from": edges, "transactions": counts}).set_index("score_from")


@dataclass(frozen=True)
class Reason:
    feature: str
    value: float
    contribution: float

    @property
    def direction(self) -> str:
        return "raises" if self.contribution > 0 else "lowers"


def feature_vector(features: Mapping[str, Any], names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """The model input of one stored transaction (its ``features`` column), in the order of ``names``
    (the model's own feature list)."""
    missing = [name for name in names if name not in features]
    if missing:
        raise ValueError(f"stored features lack {', '.join(missing)}")
    return np.array([[float(features[name]) for name in names]], dtype=np.float32)


def reason_codes(
    contributions: Sequence[float],
    values: Sequence[float],
    names: Sequence[str] = FEATURE_NAMES,
    top: int = 5,
) -> list[Reason]:
    """The ``top`` features that moved the score most (largest absolute SHAP contribution, log-odds),
    strongest first; ``contributions`` may carry the bias as a last extra element, which is dropped."""
    contributions = list(contributions)[: len(names)]
    reasons = [Reason(n, float(v), float(c)) for n, v, c in zip(names, values, contributions, strict=True)]
    reasons.sort(key=lambda r: abs(r.contribution), reverse=True)
    return [r for r in reasons[:top] if r.contribution != 0.0]


def shap_contributions(model: Any, row: np.ndarray) -> np.ndarray:
    """SHAP values (log-odds, bias last) of one row for a fraudops model: XGBoost's ``pred_contribs``,
    CatBoost's ``ShapValues``."""
    family = getattr(model, "family", None)
    if family == "xgboost":
        import xgboost as xgb

        # named like the booster's training data, when it was trained on named columns
        names = model.booster.feature_names
        matrix = xgb.DMatrix(row, feature_names=list(names) if names else None)
        return np.asarray(model.booster.predict(matrix, pred_contribs=True))[0]
    if family == "catboost":
        from catboost import Pool

        return np.asarray(model.model.get_feature_importance(Pool(row), type="ShapValues"))[0]
    raise TypeError(f"no SHAP contributions for {type(model).__name__}")


def mlflow_run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def airflow_run_url(airflow_url: str, dag_id: str, dag_run_id: str) -> str:
    from urllib.parse import quote

    return f"{airflow_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(dag_run_id, safe='')}"


def run_key_of_snapshot(uri: object) -> str | None:
    """The pipeline run key in a lake snapshot URI ``s3://<lake>/<prefix>/<run_key>/<name>.parquet``."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    parts = uri.removeprefix("s3://").split("/")
    return parts[-2] if len(parts) >= 4 else None


def metrics_text(metrics: object) -> str:
    """A ``model_metadata.metrics`` object as one readable line (``name=value``, floats to 4 places)."""
    if not isinstance(metrics, Mapping) or not metrics:
        return ""
    return ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(metrics.items())
    )
