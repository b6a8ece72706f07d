"""Typed configuration of the model core: the simulator, the model families and training.

These are the ``simulator:``, ``model:`` and ``training:`` sections of ``configs/fraudops.yaml``; the
:class:`fraudops.config.settings.Settings` object holds one field for each. Like the rest of the settings,
unknown keys are rejected so a typo fails loudly instead of silently training with a default.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from fraudops.config.base import StrictModel

# days until a transaction's label (fraud or not) is known: the simulator's label feed, the features'
# delayed terminal windows, the training split's gap and the evaluation protocol all use this one value
LABEL_DELAY_DAYS = 7

Family = Literal["xgboost", "catboost"]
FAMILIES: tuple[Family, ...] = ("xgboost", "catboost")
# How the ~1:120 class imbalance is handled; the same three options exist in both libraries:
#   balanced: positives weigh n_neg / n_pos (xgboost scale_pos_weight, catboost "Balanced")
#   sqrt:     positives weigh sqrt(n_neg / n_pos) (catboost "SqrtBalanced")
#   none:     no reweighting
ClassWeight = Literal["balanced", "sqrt", "none"]


class SimulatorSettings(StrictModel):
    """The simulated world (SIMULATOR.md). The defaults are the default data set."""

    n_customers: int = Field(5000, ge=1)
    n_terminals: int = Field(10000, ge=1)
    n_days: int = Field(183, ge=1)
    start_date: date = date(2018, 4, 1)
    radius: float = Field(5.0, gt=0)
    seed: int = Field(42, ge=0)
    # fraud scenarios
    amount_threshold: float = 220.0
    compromised_terminals_per_day: int = Field(2, ge=0)
    terminal_compromise_days: int = Field(28, ge=1)
    compromised_customers_per_day: int = Field(3, ge=0)
    customer_compromise_days: int = Field(14, ge=1)
    customer_fraud_share: float = Field(1 / 3, ge=0, le=1)
    customer_amount_factor: float = Field(5.0, gt=0)


class Thresholds(StrictModel):
    """Decision thresholds on the fraud score: score >= review -> REVIEW, score >= block -> BLOCK."""

    review: float = Field(0.5, gt=0, lt=1)
    block: float = Field(0.9, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.review >= self.block:
            raise ValueError(
                f"thresholds.review ({self.review}) must be below thresholds.block ({self.block})"
            )
        return self


class XGBoostParams(StrictModel):
    n_estimators: int = Field(400, ge=1)
    max_depth: int = Field(6, ge=1)
    learning_rate: float = Field(0.1, gt=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(1.0, ge=0)
    reg_lambda: float = Field(1.0, ge=0)
    # histogram bins per feature: 256 (XGBoost's default) puts the amounts above 200 in a few wide bins
    max_bin: int = Field(1024, ge=2)


class CatBoostParams(StrictModel):
    iterations: int = Field(600, ge=1)
    depth: int = Field(6, ge=1, le=16)
    learning_rate: float = Field(0.1, gt=0)
    l2_leaf_reg: float = Field(3.0, ge=0)
    # borders per numeric feature (CatBoost's default on CPU is 254)
    border_count: int = Field(1024, ge=1, le=65535)


class ModelSettings(StrictModel):
    family: Family = "xgboost"
    class_weight: ClassWeight = "sqrt"
    thresholds: Thresholds = Thresholds()
    xgboost: XGBoostParams = XGBoostParams()
    catboost: CatBoostParams = CatBoostParams()

    def params_of(self, family: Family) -> XGBoostParams | CatBoostParams:
        return self.xgboost if family == "xgboost" else self.catboost


class SplitSettings(StrictModel):
    """Time-based split, counted back from the end of the data: train | validation | gap | test.

    The gap equals the label delay: at the moment a model is trained (the start of the test window) the
    labels of the last ``gap_days`` are not known yet, so training data must end before it.
    """

    train_days: int = Field(84, ge=1)
    validation_days: int = Field(14, ge=1)
    gap_days: int = Field(LABEL_DELAY_DAYS, ge=0)
    # four weekly test sets for the protocol's mean and standard deviation
    test_days: int = Field(28, ge=1)

    @model_validator(mode="after")
    def _gap_is_the_label_delay(self) -> SplitSettings:
        # the features, the label feed and the protocol all assume the one delay; a different gap would
        # train on labels production does not have yet, or waste days of them
        if self.gap_days != LABEL_DELAY_DAYS:
            raise ValueError(
                f"training.split.gap_days is {self.gap_days}, but the label delay is {LABEL_DELAY_DAYS} days "
                "(fraudops.config.model.LABEL_DELAY_DAYS): the gap must equal it"
            )
        return self


class SearchSettings(StrictModel):
    """Optional small random search: each trial trains on the training window and is scored by average
    precision on the validation window; the best trial's parameters are kept."""

    enabled: bool = False
    trials: int = Field(6, ge=1)
    xgboost: dict[str, list[float]] = Field(
        default_factory=lambda: {"max_depth": [4, 6, 8], "learning_rate": [0.05, 0.1, 0.2]}
    )
    catboost: dict[str, list[float]] = Field(
        default_factory=lambda: {"depth": [4, 6, 8], "learning_rate": [0.05, 0.1, 0.2]}
    )

    @model_validator(mode="after")
    def _known_params(self) -> SearchSettings:
        for family, space, params in (
            ("xgboost", self.xgboost, XGBoostParams),
            ("catboost", self.catboost, CatBoostParams),
        ):
            unknown = sorted(set(space) - set(params.model_fields))
            if unknown:
                raise ValueError(f"search.{family}: unknown parameter(s) {unknown}")
            empty = sorted(k for k, v in space.items() if not v)
            if empty:
                raise ValueError(f"search.{family}: no values for {empty}")
        return self


class TrainingSettings(StrictModel):
    experiment: str = "fraud-detector-training"
    seed: int = 42
    # the machine has 2 cores; Celery runs one training per slot
    threads: int = Field(2, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    split: SplitSettings = SplitSettings()
    search: SearchSettings = SearchSettings()
    # rows scored one at a time to measure single-row latency
    latency_rows: int = Field(500, ge=10)
