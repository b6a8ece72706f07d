"""Typed configuration of the retraining pipeline: the ``pipeline:`` section of configs/fraudops.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fraudops.config.base import StrictModel
from fraudops.config.model import FAMILIES, Family

# the families a DAG run may ask for (the form's choices)
FAMILY_CHOICES = FAMILIES

# the protocol's means over the weekly test sets (evaluation.protocol_metrics) or the simple metrics of the
# whole test window
Metric = Literal[
    "protocol_average_precision_mean",
    "protocol_auc_roc_mean",
    "protocol_card_precision_at_100_mean",
    "average_precision",
    "auc_roc",
    "card_precision_at_100",
]


class ValidationRules(StrictModel):
    """What a training snapshot must satisfy before anything is trained on it."""

    min_rows: int = Field(5_000, ge=1)
    # of the labelled rows; the default simulated world has ~0.8 % fraud, small test worlds several %
    fraud_rate_min: float = Field(0.001, ge=0, le=1)
    fraud_rate_max: float = Field(0.10, ge=0, le=1)
    max_amount: float = Field(100_000.0, gt=0)
    # the newest transaction may be at most this old at the cutoff
    max_staleness_hours: float = Field(48.0, gt=0)
    # of the rows older than the label delay, the share that must carry a label
    min_labelled_share: float = Field(0.95, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ValidationRules:
        if self.fraud_rate_min >= self.fraud_rate_max:
            raise ValueError("fraud_rate_min must be below fraud_rate_max")
        return self


class PromotionGates(StrictModel):
    """A candidate becomes champion only if it clears every absolute gate and beats the champion."""

    primary_metric: Metric = "protocol_average_precision_mean"
    min_auc_roc: float = Field(0.80, ge=0, le=1)
    min_average_precision: float = Field(0.30, ge=0, le=1)
    # the primary metric must exceed the champion's by at least this much (on the same window)
    min_improvement: float = Field(0.0, ge=0)
    # CPU time of one-row scoring on one thread (evaluation.scoring_latency): what the model costs,
    # whatever else the machine runs while it is measured
    max_single_row_cpu_p99_ms: float = Field(50.0, gt=0)


class PipelineSettings(StrictModel):
    # model families trained by the DAG, one mapped task each
    families: list[Family] = Field(default_factory=lambda: ["xgboost", "catboost"], min_length=1)
    # the data window a run extracts, ending at its cutoff
    window_days: int = Field(179, ge=14)
    snapshot_prefix: str = "snapshots"
    validation: ValidationRules = ValidationRules()
    promotion: PromotionGates = PromotionGates()
    # who may trigger a run with `force` or `snapshot_uri` (Airflow roles; fraudops.run_access)
    privileged_roles: list[str] = Field(default_factory=lambda: ["Admin", "Op"], min_length=1)
