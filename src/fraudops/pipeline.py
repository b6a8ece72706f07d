"""The retraining pipeline, one plain function per step. The Airflow DAG (dags/fraud_retraining.py) runs
them one task each; :func:`run_all` (``fraudops pipeline run``) runs the same steps in one process, with
the parameters resolved by the same :class:`RunParams`.

Steps hand each other URIs and small dicts, never data: snapshots and feature frames live in the data lake
(:mod:`fraudops.lake`). The external systems come in with the :class:`~fraudops.context.Context`: the
model registry (:mod:`fraudops.registry`), the lake, the audit log (:mod:`fraudops.audit`) and the reload
signal. Every step is safe to re-run: a re-run overwrites its own snapshot, finds the model versions it
registered before instead of registering new ones, rewrites its audit rows instead of adding more, and
never flips an alias that already points where the decision wants it.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fraudops import fraud_db
from fraudops.audit import AuditRow, row_key
from fraudops.config.model import ModelSettings
from fraudops.config.settings import Settings
from fraudops.context import Context
from fraudops.promotion import Candidate, PromotionDecision, decide_promotion
from fraudops.registry import VersionRef
from fraudops.train import labelled
from fraudops.validation import DataValidationError  # noqa: F401  (re-exported: the DAG catches it)

__all__ = ["Context", "DataValidationError", "RunParams", "run_all"]

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


# -- a run's parameters ------------------------------------------------------------------------------------
def run_key_of(dag_run_id: str) -> str:
    """A run id usable as an object-key segment and an MLflow tag value."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", dag_run_id).strip("_")


def resolve_cutoff(param: str | None, fallback: datetime | None = None) -> pd.Timestamp:
    """The cutoff of a run as naive UTC: the `cutoff` param if given, else the data interval end, else now."""
    value = pd.Timestamp(param) if param else pd.Timestamp(fallback or datetime.now(UTC))
    return value.tz_convert("UTC").tz_localize(None) if value.tzinfo else value


@dataclass(frozen=True)
class RunParams:
    """A run's parameters with the configuration's defaults filled in (the DAG's trigger form and the
    ``pipeline run`` options both come here)."""

    cutoff: pd.Timestamp
    window_days: int
    families: tuple[str, ...]
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    snapshot_uri: str | None = None
    dry_run: bool = False
    force: bool = False

    @classmethod
    def of(
        cls,
        settings: Settings,
        cutoff: str | None = None,
        fallback: datetime | None = None,
        *,
        window_days: int | None = None,
        families: list[str] | tuple[str, ...] | None = None,
        model_overrides: Mapping[str, Any] | None = None,
        snapshot_uri: str | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> RunParams:
        """Empty values (0, [], "") mean the configuration's."""
        return cls(
            cutoff=resolve_cutoff(cutoff, fallback),
            window_days=window_days or settings.pipeline.window_days,
            families=tuple(families or settings.pipeline.families),
            model_overrides=dict(model_overrides or {}),
            snapshot_uri=snapshot_uri or None,
            dry_run=bool(dry_run),
            force=bool(force),
        )

    @classmethod
    def from_dag(cls, settings: Settings, params: Mapping[str, Any], fallback: datetime | None) -> RunParams:
        """From the DAG's params (its trigger form) and the run's data interval end."""
        names = ("window_days", "families", "model_overrides", "snapshot_uri", "dry_run", "force")
        return cls.of(settings, params.get("cutoff"), fallback, **{n: params.get(n) for n in names})


# -- steps -------------------------------------------------------------------------------------------------
def extract(
    ctx: Context, cutoff: pd.Timestamp, window_days: int, run_key: str, source_uri: str | None = None
) -> str:
    """Transactions of ``[cutoff - window, cutoff)`` and the labels known at the cutoff -> lake Parquet.

    With ``source_uri`` (a Parquet snapshot in the lake, e.g. imported outside data) that snapshot is
    taken as is instead: it goes through the same validation as an extract from the database.
    """
    if source_uri:
        frame = ctx.lake.read(source_uri)
    else:
        fraud_db.require_tables(ctx.dsn, fraud_db.TRAINING_TABLES)
        start = cutoff - pd.Timedelta(days=window_days)
        frame = fraud_db.read_transactions(
            ctx.dsn, start.to_pydatetime(), cutoff.to_pydatetime(), labels_known_at=cutoff.to_pydatetime()
        )
        if frame.empty:
            raise ValueError(
                f"no transactions between {start} and {cutoff}: load history first (`fraudops bootstrap`)"
            )
    uri = ctx.lake.write(frame, ctx.lake.uri(run_key, "transactions"))
    log.info(
        "snapshot of %d transactions (%d labelled) -> %s", len(frame), frame["tx_fraud"].notna().sum(), uri
    )
    return uri


def validate(ctx: Context, snapshot_uri: str, cutoff: pd.Timestamp, run_key: str) -> dict[str, Any]:
    """Run the Great Expectations suite, log its Data Docs to MLflow, raise on any failure."""
    import mlflow

    from fraudops.tracking import experiment_id, use_tracking_uri
    from fraudops.validation import validate_snapshot

    frame = ctx.lake.read(snapshot_uri)
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

    features = build_features(ctx.lake.read(snapshot_uri))
    return ctx.lake.write(features, ctx.lake.uri(run_key, "features"))


def _reported(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(metrics[k]) for k in REPORTED_METRICS if k in metrics}


def _tracked_run(ctx: Context, run_id: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(ctx.settings.mlflow_tracking_uri).get_run(run_id)


def _registered_in_run(ctx: Context, run_key: str, family: str) -> dict[str, Any] | None:
    """The version an earlier attempt of this pipeline run registered for ``family``, if any. The registry
    is asked, not the run: an attempt may die between registering and finishing its run."""
    versions = ctx.registry.find({RUN_KEY_TAG: run_key, "family": family})
    if not versions:
        return None
    first = versions[0]
    run = _tracked_run(ctx, first.run_id)
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
        ctx.lake.read(features_uri),
        cutoff,
        model_settings=model_settings_with(ctx, overrides),
        training=ctx.settings.training,
        tracking_uri=ctx.settings.mlflow_tracking_uri,
        registry=ctx.registry,
        family=family,  # type: ignore[arg-type]
        data_snapshot=features_uri,
        tags={RUN_KEY_TAG: run_key},
    )
    experiment = _tracked_run(ctx, result.run_id).info.experiment_id
    return {
        "family": family,
        "version": result.model_version,
        "run_id": result.run_id,
        "metrics": _reported(result.metrics),
        "mlflow_run_url": ctx.run_url(experiment, result.run_id),
        "reused": False,
    }


def evaluate(
    ctx: Context,
    features_uri: str,
    candidates: list[Mapping[str, Any]],
    cutoff: pd.Timestamp,
    force: bool = False,
    run_key: str | None = None,
) -> dict[str, Any]:
    """Score the candidates and the current champion on the same out-of-time window; decide."""
    from fraudops.evaluation import ProtocolWindow
    from fraudops.evaluation import evaluate as evaluate_model
    from fraudops.features import LABEL_DELAY_DAYS
    from fraudops.windows import windows_at

    features = labelled(ctx.lake.read(features_uri))
    windows = windows_at(features, ctx.settings.training.split, cutoff)
    test = features[windows.masks(features["tx_datetime"])["test"]]
    thresholds = ctx.settings.model.thresholds
    latency_rows = ctx.settings.training.latency_rows
    protocol = ProtocolWindow(windows.test_start, windows.test_end, features, LABEL_DELAY_DAYS)

    def metrics_of(version: str) -> dict[str, float]:
        model = ctx.registry.load(version)
        # the latency is measured here, after the trainings, not beside them (see scoring_latency)
        return _reported(
            evaluate_model(model, test, thresholds, latency_rows=latency_rows, protocol=protocol).metrics
        )

    scored = [
        Candidate(c["family"], str(c["version"]), c["run_id"], metrics_of(str(c["version"])))
        for c in candidates
    ]
    champion = ctx.registry.champion()
    champion_metrics = metrics_of(champion.version) if champion else None
    decision = decide_promotion(
        scored,
        champion.version if champion else None,
        champion_metrics,
        ctx.settings.pipeline.promotion,
        force=force,
    )
    window = windows.test_text
    rows = [
        AuditRow(
            "evaluation",
            model_version=c.version,
            run_id=c.run_id,
            family=c.family,
            decision="candidate",
            reason=f"out-of-time window {window}",
            metrics=c.metrics,
            data_snapshot=features_uri,
            key=row_key(run_key, "evaluate", f"{c.family}-v{c.version}"),
        )
        for c in scored
    ]
    if champion:
        rows.append(
            AuditRow(
                "evaluation",
                model_version=champion.version,
                run_id=champion.run_id,
                alias=ctx.registry.champion_alias,
                decision="champion",
                reason=f"out-of-time window {window}",
                metrics=champion_metrics or {},
                data_snapshot=features_uri,
                key=row_key(run_key, "evaluate", f"champion-v{champion.version}"),
            )
        )
    ctx.audit.record(rows)
    return {**decision.as_dict(), "test_window": window, "data_snapshot": features_uri}


def promote(
    ctx: Context, decision: Mapping[str, Any], dry_run: bool = False, run_key: str | None = None
) -> dict[str, Any]:
    """Apply a decision to the registry: the champion alias to the candidate, the previous alias to the old
    champion.

    Returns ``promoted`` (the candidate is champion because of this decision) and ``changed`` (aliases
    moved now; false on a re-run, which never flips them twice).
    """
    extra = ("test_window", "data_snapshot")
    d = PromotionDecision.from_dict({k: v for k, v in decision.items() if k not in extra})
    key = row_key(run_key, "promote")

    def row(event: str, verdict: str, reason: str, alias: str | None = None) -> AuditRow:
        return AuditRow(
            event,
            model_version=d.candidate.version if d.candidate else None,
            run_id=d.candidate.run_id if d.candidate else None,
            family=d.candidate.family if d.candidate else None,
            alias=alias,
            decision=verdict,
            reason=reason,
            metrics={
                "candidate": d.candidate.metrics if d.candidate else {},
                "champion": d.champion_metrics,
                "gate_failures": d.gate_failures,
            },
            data_snapshot=decision.get("data_snapshot"),
            key=key,
        )

    current = ctx.registry.champion()
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
        ctx.audit.record([row("rejection", "keep_champion", d.reason)])
        return {"promoted": False, "changed": False, "version": current_version, "reason": d.reason}
    if current_version != d.champion_version:
        reason = f"champion moved to v{current_version} during the run (expected v{d.champion_version})"
        ctx.audit.record([row("rejection", "stale_decision", reason)])
        raise RuntimeError(reason + ": re-run the pipeline to evaluate against it")
    if dry_run:
        ctx.audit.record([row("rejection", "dry_run", f"dry run: {d.reason}")])
        return {
            "promoted": False,
            "changed": False,
            "version": current_version,
            "reason": f"dry run: {d.reason}",
        }
    ctx.registry.set_champion(d.candidate.version)
    ctx.audit.record([row("promotion", "promoted", d.reason, ctx.registry.champion_alias)])
    return {
        "promoted": True,
        "changed": True,
        "version": d.candidate.version,
        "previous": current_version,
        "reason": d.reason,
        "run_id": d.candidate.run_id,
    }


def signal(ctx: Context, promotion: Mapping[str, Any], action: str = "promote") -> bool:
    """Tell the scorers: a `model_updates` event, only when a promotion happened."""
    from fraudops.signals import ModelUpdate

    if not promotion.get("promoted"):
        return False
    update = ModelUpdate.now(
        ctx.model_name,
        str(promotion["version"]),
        ctx.registry.champion_alias,
        str(promotion.get("run_id", "")),
        action,
    )
    ctx.publish(update)
    return True


def run_all(ctx: Context, params: RunParams, run_key: str) -> dict[str, Any]:
    """Every step in this process, in the DAG's order (``fraudops pipeline run``)."""
    snapshot = extract(ctx, params.cutoff, params.window_days, run_key, params.snapshot_uri)
    validate(ctx, snapshot, params.cutoff, run_key)
    features = build_feature_snapshot(ctx, snapshot, run_key)
    candidates = [
        train(ctx, features, family, run_key, params.cutoff, params.model_overrides)
        for family in params.families
    ]
    decision = evaluate(ctx, features, candidates, params.cutoff, params.force, run_key)
    promotion = promote(ctx, decision, params.dry_run, run_key)
    signalled = signal(ctx, promotion)
    return {
        "snapshot": snapshot,
        "decision": decision["reason"],
        "promotion": promotion,
        "signalled": signalled,
    }


# -- for people: promote a chosen version, roll back -------------------------------------------------
def promote_version(ctx: Context, version: str, reason: str = "manual promotion") -> dict[str, Any]:
    target = ctx.registry.get(str(version))
    previous = ctx.registry.set_champion(target.version)
    return _announce_manual_move(
        ctx,
        target,
        previous,
        event="promotion",
        action="manual",
        decision="manual",
        audit_reason=reason,
        reason=reason,
    )


def rollback(ctx: Context) -> dict[str, Any]:
    """The champion back to the previous version; the demoted version becomes the previous one."""
    target, demoted = ctx.registry.rollback()
    return _announce_manual_move(
        ctx,
        target,
        demoted,
        event="rollback",
        action="rollback",
        decision="rollback",
        audit_reason=f"rolled back from v{demoted}",
        reason="rollback",
    )


def _announce_manual_move(
    ctx: Context,
    target: VersionRef,
    previous: str | None,
    *,
    event: str,
    action: str,
    decision: str,
    audit_reason: str,
    reason: str,
) -> dict[str, Any]:
    """Audit a champion move made by a person, then tell the scorer (the same for promote and rollback)."""
    ctx.audit.record(
        [
            AuditRow(
                event,
                model_version=target.version,
                run_id=target.run_id,
                alias=ctx.registry.champion_alias,
                decision=decision,
                reason=audit_reason,
            )
        ]
    )
    result = {
        "promoted": True,
        "changed": True,
        "version": target.version,
        "previous": previous,
        "run_id": target.run_id,
        "reason": reason,
    }
    signal(ctx, result, action=action)
    return result
