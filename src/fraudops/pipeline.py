"""The retraining pipeline, one plain function per step. The Airflow DAG (dags/fraud_retraining.py) and the
`fraudops pipeline ...` commands call these same functions.

Steps hand each other URIs and small dicts, never data: snapshots and feature frames live in the data lake
bucket under ``<snapshot_prefix>/<run_key>/``. Every step is safe to re-run: a re-run overwrites its own
snapshot, finds the model versions it registered before instead of registering new ones, and never flips
an alias that already points where the decision wants it.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fraudops import fraud_db
from fraudops.model_config import ModelSettings
from fraudops.promotion import Candidate, Decision, decide
from fraudops.secrets import load_secrets
from fraudops.settings import Settings, load_settings
from fraudops.train import labelled, training_end
from fraudops.validation import DataValidationError  # noqa: F401  (re-exported: the DAG catches it)

log = logging.getLogger(__name__)

RUN_KEY_TAG = "pipeline.run_key"
VALIDATION_EXPERIMENT = "fraud-detector-data-validation"
# the metrics carried between steps and written to model_metadata
REPORTED_METRICS = (
    "protocol_average_precision_mean",
    "protocol_average_precision_std",
    "protocol_auc_roc_mean",
    "protocol_auc_roc_std",
    "protocol_card_precision_at_100_mean",
    "protocol_card_precision_at_100_std",
    "auc_roc",
    "average_precision",
    "card_precision_at_100",
    "precision_review",
    "recall_review",
    "precision_block",
    "recall_block",
    "single_row_cpu_p50_ms",
    "single_row_cpu_p99_ms",
    "single_row_wall_p99_ms",
    "batch_rows_per_s",
    "test_rows",
)


@dataclass(frozen=True)
class Context:
    settings: Settings
    secrets: Mapping[str, str]

    @classmethod
    def load(cls) -> Context:
        settings = load_settings()
        return cls(settings, load_secrets(settings.env_dir))

    @property
    def dsn(self) -> str:
        return fraud_db.fraud_dsn(self.settings, self.secrets)

    @property
    def model_name(self) -> str:
        return self.settings.mlflow.model_name

    @property
    def champion(self) -> str:
        """The registry alias of production's model (the scorer follows the same setting)."""
        return self.settings.mlflow.champion_alias

    @property
    def previous(self) -> str:
        return self.settings.mlflow.previous_alias

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(self.settings.mlflow_tracking_uri)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.settings.mlflow_tracking_uri}/#/experiments/{experiment_id}/runs/{run_id}"


# -- small helpers -----------------------------------------------------------------------------------------
def run_key_of(dag_run_id: str) -> str:
    """A run id usable as an object-key segment and an MLflow tag value."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", dag_run_id).strip("_")


def resolve_cutoff(param: str | None, fallback: datetime | None = None) -> pd.Timestamp:
    """The cutoff of a run as naive UTC: the `cutoff` param if given, else the data interval end, else now."""
    value = pd.Timestamp(param) if param else pd.Timestamp(fallback or datetime.now(UTC))
    return value.tz_convert("UTC").tz_localize(None) if value.tzinfo else value


def lake_uri(ctx: Context, run_key: str, name: str) -> str:
    settings = ctx.settings
    return f"s3://{settings.minio.buckets.lake}/{settings.pipeline.snapshot_prefix}/{run_key}/{name}.parquet"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def write_frame(ctx: Context, frame: pd.DataFrame, uri: str) -> str:
    from fraudops.storage import s3_client

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    bucket, key = _split(uri)
    s3_client(ctx.settings, ctx.secrets).put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return uri


def read_frame(ctx: Context, uri: str) -> pd.DataFrame:
    from fraudops.storage import s3_client

    bucket, key = _split(uri)
    body = s3_client(ctx.settings, ctx.secrets).get_object(Bucket=bucket, Key=key)["Body"].read()
    return pd.read_parquet(io.BytesIO(body))


# -- steps -------------------------------------------------------------------------------------------------
def extract(
    ctx: Context, cutoff: pd.Timestamp, window_days: int, run_key: str, source_uri: str | None = None
) -> str:
    """Transactions of ``[cutoff - window, cutoff)`` and the labels known at the cutoff -> lake Parquet.

    With ``source_uri`` (a Parquet snapshot in the lake, e.g. imported outside data) that snapshot is
    taken as is instead: it goes through the same validation as an extract from the database.
    """
    if source_uri:
        frame = read_frame(ctx, source_uri)
    else:
        fraud_db.create_tables(ctx.dsn)
        start = cutoff - pd.Timedelta(days=window_days)
        frame = fraud_db.read_transactions(
            ctx.dsn, start.to_pydatetime(), cutoff.to_pydatetime(), labels_known_at=cutoff.to_pydatetime()
        )
        if frame.empty:
            raise ValueError(
                f"no transactions between {start} and {cutoff}: load history first (`fraudops bootstrap`)"
            )
    uri = write_frame(ctx, frame, lake_uri(ctx, run_key, "transactions"))
    log.info(
        "snapshot of %d transactions (%d labelled) -> %s", len(frame), frame["tx_fraud"].notna().sum(), uri
    )
    return uri


def validate(ctx: Context, snapshot_uri: str, cutoff: pd.Timestamp, run_key: str) -> dict[str, Any]:
    """Run the Great Expectations suite, log its Data Docs to MLflow, raise on any failure."""
    import mlflow

    from fraudops.tracking import experiment_id, use_tracking_uri
    from fraudops.validation import validate_snapshot

    frame = read_frame(ctx, snapshot_uri)
    with tempfile.TemporaryDirectory(prefix="gx-") as root:
        report = validate_snapshot(frame, ctx.settings.pipeline.validation, cutoff, Path(root))
        use_tracking_uri(ctx.settings.mlflow_tracking_uri)
        experiment = experiment_id(VALIDATION_EXPERIMENT)
        with mlflow.start_run(experiment_id=experiment, run_name=f"validate-{run_key}") as run:
            mlflow.set_tags(
                {
                    RUN_KEY_TAG: run_key,
                    "data.snapshot": snapshot_uri,
                    "validation.success": str(report.success),
                }
            )
            mlflow.log_metrics(
                {"rows": len(frame), "checks": report.evaluated, "failed_checks": len(report.failures)}
            )
            mlflow.log_dict({"failures": report.failures, "cutoff": str(cutoff)}, "validation/result.json")
            mlflow.log_artifacts(str(report.docs), "data_docs")
    summary = {
        "rows": len(frame),
        "checks": report.evaluated,
        "failures": report.failures,
        "mlflow_run_id": run.info.run_id,
        "mlflow_run_url": ctx.run_url(experiment, run.info.run_id),
    }
    report.raise_for_failure()
    return summary


def build_feature_snapshot(ctx: Context, snapshot_uri: str, run_key: str) -> str:
    from fraudops.features import build_features

    features = build_features(read_frame(ctx, snapshot_uri))
    return write_frame(ctx, features, lake_uri(ctx, run_key, "features"))


def _reported(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(metrics[k]) for k in REPORTED_METRICS if k in metrics}


def _registered_in_run(ctx: Context, run_key: str, family: str) -> dict[str, Any] | None:
    """The version an earlier attempt of this pipeline run registered for ``family``, if any. The registry
    is asked, not the run: an attempt may die between registering and finishing its run."""
    client = ctx.client()
    versions = client.search_model_versions(
        f"name = '{ctx.model_name}' and tags.`{RUN_KEY_TAG}` = '{run_key}' and tags.family = '{family}'"
    )
    if not versions:
        return None
    first = min(versions, key=lambda v: int(v.version))
    run = client.get_run(first.run_id)
    return {
        "family": family,
        "version": first.version,
        "run_id": run.info.run_id,
        # an attempt that died after registering logged no metrics: evaluate scores every candidate anew
        "metrics": _reported(run.data.metrics),
        "mlflow_run_url": ctx.run_url(run.info.experiment_id, run.info.run_id),
        "reused": True,
    }


def model_settings_with(ctx: Context, overrides: Mapping[str, Any] | None) -> ModelSettings:
    """The configured model settings with ``overrides`` merged in (e.g. ``{"xgboost": {"max_depth": 4}}``)."""
    base = ctx.settings.model.model_dump()
    for key, value in (overrides or {}).items():
        base[key] = (
            {**base[key], **value}
            if isinstance(value, Mapping) and isinstance(base.get(key), dict)
            else value
        )
    return ModelSettings.model_validate(base)


def train(
    ctx: Context,
    features_uri: str,
    family: str,
    run_key: str,
    cutoff: pd.Timestamp,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and register one family; a re-run returns the version registered before."""
    from fraudops.train import train_at_cutoff

    previous = _registered_in_run(ctx, run_key, family)
    if previous:
        log.info("%s already registered as v%s by this pipeline run", family, previous["version"])
        return previous
    result = train_at_cutoff(
        read_frame(ctx, features_uri),
        cutoff,
        model_settings=model_settings_with(ctx, overrides),
        training=ctx.settings.training,
        tracking_uri=ctx.settings.mlflow_tracking_uri,
        model_name=ctx.model_name,
        family=family,  # type: ignore[arg-type]
        data_snapshot=features_uri,
        tags={RUN_KEY_TAG: run_key},
    )
    experiment = ctx.client().get_run(result.run_id).info.experiment_id
    return {
        "family": family,
        "version": result.model_version,
        "run_id": result.run_id,
        "metrics": _reported(result.metrics),
        "mlflow_run_url": ctx.run_url(experiment, result.run_id),
        "reused": False,
    }


def _champion(ctx: Context) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return ctx.client().get_model_version_by_alias(ctx.model_name, ctx.champion)
    except MlflowException:
        return None


def _record(ctx: Context, rows: list[dict[str, Any]]) -> None:
    with fraud_db.connect(ctx.dsn) as conn, conn.cursor() as cur:
        for row in rows:
            cur.execute(
                "INSERT INTO model_metadata (model_name, model_version, run_id, family, event, alias,"
                " decision, reason, metrics, data_snapshot) VALUES (%(model_name)s, %(model_version)s,"
                " %(run_id)s, %(family)s, %(event)s, %(alias)s, %(decision)s, %(reason)s, %(metrics)s,"
                " %(data_snapshot)s)",
                {
                    "model_name": ctx.model_name,
                    "model_version": None,
                    "run_id": None,
                    "family": None,
                    "alias": None,
                    "decision": None,
                    "reason": None,
                    "data_snapshot": None,
                    **row,
                    "metrics": json.dumps(row.get("metrics", {})),
                },
            )
        conn.commit()


def evaluate(
    ctx: Context,
    features_uri: str,
    candidates: list[Mapping[str, Any]],
    cutoff: pd.Timestamp,
    force: bool = False,
) -> dict[str, Any]:
    """Score the candidates and the current champion on the same out-of-time window; decide."""
    from fraudops.evaluation import ProtocolWindow
    from fraudops.evaluation import evaluate as evaluate_model
    from fraudops.features import LABEL_DELAY_DAYS
    from fraudops.model_families import load_model
    from fraudops.tracking import use_tracking_uri
    from fraudops.train import time_split

    use_tracking_uri(ctx.settings.mlflow_tracking_uri)  # models:/ URIs resolve through the global client
    fraud_db.create_tables(ctx.dsn)
    features = labelled(read_frame(ctx, features_uri))
    windows = time_split(features["tx_datetime"], ctx.settings.training.split, training_end(cutoff))
    test = features[windows.masks(features["tx_datetime"])["test"]]
    thresholds = ctx.settings.model.thresholds
    latency_rows = ctx.settings.training.latency_rows
    protocol = ProtocolWindow(windows.test_start, windows.test_end, features, LABEL_DELAY_DAYS)

    def metrics_of(version: str) -> dict[str, float]:
        model = load_model(f"models:/{ctx.model_name}/{version}")
        # the latency is measured here, after the trainings, not beside them (see scoring_latency)
        return _reported(
            evaluate_model(model, test, thresholds, latency_rows=latency_rows, protocol=protocol).metrics
        )

    scored = [
        Candidate(c["family"], str(c["version"]), c["run_id"], metrics_of(str(c["version"])))
        for c in candidates
    ]
    champion = _champion(ctx)
    champion_metrics = metrics_of(champion.version) if champion else None
    decision = decide(
        scored,
        champion.version if champion else None,
        champion_metrics,
        ctx.settings.pipeline.promotion,
        force=force,
    )
    window = f"{windows.test_start.date()}..{windows.test_end.date()}"
    rows = [
        {
            "model_version": c.version,
            "run_id": c.run_id,
            "family": c.family,
            "event": "evaluation",
            "decision": "candidate",
            "reason": f"out-of-time window {window}",
            "metrics": c.metrics,
            "data_snapshot": features_uri,
        }
        for c in scored
    ]
    if champion:
        rows.append(
            {
                "model_version": champion.version,
                "run_id": champion.run_id,
                "event": "evaluation",
                "alias": ctx.champion,
                "decision": "champion",
                "reason": f"out-of-time window {window}",
                "metrics": champion_metrics,
                "data_snapshot": features_uri,
            }
        )
    _record(ctx, rows)
    return {**decision.as_dict(), "test_window": window, "data_snapshot": features_uri}


def promote(ctx: Context, decision: Mapping[str, Any], dry_run: bool = False) -> dict[str, Any]:
    """Apply a decision to the registry: ``@champion`` to the candidate, ``@previous`` to the old champion.

    Returns ``promoted`` (the candidate is champion because of this decision) and ``changed`` (aliases
    moved now; false on a re-run, which never flips them twice).
    """
    d = Decision.from_dict({k: v for k, v in decision.items() if k not in ("test_window", "data_snapshot")})
    base = {
        "model_version": d.candidate.version if d.candidate else None,
        "run_id": d.candidate.run_id if d.candidate else None,
        "family": d.candidate.family if d.candidate else None,
        "data_snapshot": decision.get("data_snapshot"),
        "metrics": {
            "candidate": d.candidate.metrics if d.candidate else {},
            "champion": d.champion_metrics,
            "gate_failures": d.gate_failures,
        },
    }
    current = _champion(ctx)
    current_version = current.version if current else None
    if d.candidate and current_version == d.candidate.version and d.champion_version != current_version:
        return {
            "promoted": True,
            "changed": False,
            "version": current_version,
            "reason": "already champion (re-run)",
            "run_id": d.candidate.run_id,
        }
    if not d.promote or d.candidate is None:
        _record(
            ctx,
            [{**base, "event": "rejection", "decision": "keep_champion", "alias": None, "reason": d.reason}],
        )
        return {"promoted": False, "changed": False, "version": current_version, "reason": d.reason}
    if current_version != d.champion_version:
        reason = f"champion moved to v{current_version} during the run (expected v{d.champion_version})"
        _record(ctx, [{**base, "event": "rejection", "decision": "stale_decision", "reason": reason}])
        raise RuntimeError(reason + ": re-run the pipeline to evaluate against it")
    if dry_run:
        _record(
            ctx, [{**base, "event": "rejection", "decision": "dry_run", "reason": f"dry run: {d.reason}"}]
        )
        return {
            "promoted": False,
            "changed": False,
            "version": current_version,
            "reason": f"dry run: {d.reason}",
        }
    set_champion(ctx, d.candidate.version)
    _record(
        ctx,
        [{**base, "event": "promotion", "alias": ctx.champion, "decision": "promoted", "reason": d.reason}],
    )
    return {
        "promoted": True,
        "changed": True,
        "version": d.candidate.version,
        "previous": current_version,
        "reason": d.reason,
        "run_id": d.candidate.run_id,
    }


def set_champion(ctx: Context, version: str) -> str | None:
    """Point ``@champion`` at ``version`` and ``@previous`` at the old champion. If moving the champion
    fails, ``@previous`` is put back, so a failed promotion leaves the registry as it was."""
    client = ctx.client()
    current = _champion(ctx)
    old_previous = None
    try:
        old_previous = client.get_model_version_by_alias(ctx.model_name, ctx.previous).version
    except Exception:  # no previous yet
        old_previous = None
    if current and current.version != str(version):
        client.set_registered_model_alias(ctx.model_name, ctx.previous, current.version)
    try:
        client.set_registered_model_alias(ctx.model_name, ctx.champion, str(version))
    except Exception:
        if old_previous:
            client.set_registered_model_alias(ctx.model_name, ctx.previous, old_previous)
        raise
    return current.version if current else None


def signal(ctx: Context, promotion: Mapping[str, Any], action: str = "promote") -> bool:
    """Tell the scorers: a `model_updates` event, only when a promotion happened."""
    from fraudops.signals import ModelUpdate, publish_model_update

    if not promotion.get("promoted"):
        return False
    update = ModelUpdate.now(
        ctx.model_name, str(promotion["version"]), ctx.champion, str(promotion.get("run_id", "")), action
    )
    publish_model_update(ctx.settings.kafka_bootstrap_servers, update)
    return True


# -- for people: promote a chosen version, roll back -------------------------------------------------
def promote_version(ctx: Context, version: str, reason: str = "manual promotion") -> dict[str, Any]:
    model = ctx.client().get_model_version(ctx.model_name, str(version))
    previous = set_champion(ctx, str(version))
    _record(
        ctx,
        [
            {
                "model_version": str(version),
                "run_id": model.run_id,
                "event": "promotion",
                "alias": ctx.champion,
                "decision": "manual",
                "reason": reason,
            }
        ],
    )
    result = {
        "promoted": True,
        "changed": True,
        "version": str(version),
        "previous": previous,
        "run_id": model.run_id,
        "reason": reason,
    }
    signal(ctx, result, action="manual")
    return result


def rollback(ctx: Context) -> dict[str, Any]:
    """``@champion`` back to ``@previous``; the demoted version becomes ``@previous``."""
    from mlflow.exceptions import MlflowException

    client = ctx.client()
    try:
        target = client.get_model_version_by_alias(ctx.model_name, ctx.previous)
    except MlflowException as exc:
        raise RuntimeError(f"{ctx.model_name} has no @{ctx.previous} version to roll back to") from exc
    demoted = set_champion(ctx, target.version)
    _record(
        ctx,
        [
            {
                "model_version": target.version,
                "run_id": target.run_id,
                "event": "rollback",
                "alias": ctx.champion,
                "decision": "rollback",
                "reason": f"rolled back from v{demoted}",
            }
        ],
    )
    result = {
        "promoted": True,
        "changed": True,
        "version": target.version,
        "previous": demoted,
        "run_id": target.run_id,
        "reason": "rollback",
    }
    signal(ctx, result, action="rollback")
    return result
