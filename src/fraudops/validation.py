"""The Great Expectations suite a training snapshot must pass before anything is trained on it.

The suite is defined here, in code, so it is versioned with the schema it protects. A run produces an
HTML Data Docs site that the pipeline logs to MLflow next to the training runs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fraudops.config.pipeline import ValidationRules
from fraudops.labels import DEFAULT_DELAY
from fraudops.schema import EVENT_FIELDS, LABEL_COLUMNS

SUITE_NAME = "transactions_snapshot"
# derived before validation: True where a label is known or not yet due (younger than the label delay)
LABEL_DUE_KNOWN = "label_known_or_not_due"


class DataValidationError(RuntimeError):
    """The snapshot broke the suite: nothing may be trained on it."""

    def __init__(self, failures: list[str], docs: Path | None) -> None:
        super().__init__("data validation failed:\n  - " + "\n  - ".join(failures))
        self.failures = failures
        self.docs = docs


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    failures: list[str]
    evaluated: int
    docs: Path  # folder of the Data Docs site (index.html)

    def raise_for_failure(self) -> None:
        if not self.success:
            raise DataValidationError(self.failures, self.docs)


def expectations(rules: ValidationRules, cutoff: pd.Timestamp) -> list[Any]:
    import great_expectations as gx

    e = gx.expectations
    columns = [f.name for f in EVENT_FIELDS] + list(LABEL_COLUMNS) + [LABEL_DUE_KNOWN]
    suite: list[Any] = [
        e.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True),
        e.ExpectTableRowCountToBeBetween(min_value=rules.min_rows),
        e.ExpectColumnValuesToBeUnique(column="transaction_id"),
        e.ExpectColumnValuesToBeBetween(column="tx_amount", min_value=0, max_value=rules.max_amount),
        e.ExpectColumnValuesToBeInSet(column="tx_fraud", value_set=[0, 1]),
        e.ExpectColumnMeanToBeBetween(
            column="tx_fraud", min_value=rules.fraud_rate_min, max_value=rules.fraud_rate_max
        ),
        # freshness: the snapshot reaches up to the cutoff, and nothing lies in the future
        e.ExpectColumnMaxToBeBetween(
            column="tx_datetime",
            min_value=cutoff - pd.Timedelta(hours=rules.max_staleness_hours),
            max_value=cutoff,
        ),
        e.ExpectColumnMeanToBeBetween(column=LABEL_DUE_KNOWN, min_value=rules.min_labelled_share),
    ]
    for field in EVENT_FIELDS:
        suite.append(e.ExpectColumnValuesToNotBeNull(column=field.name))
        if field.minimum is not None and field.kind in ("int", "float") and field.name != "tx_amount":
            suite.append(e.ExpectColumnValuesToBeBetween(column=field.name, min_value=field.minimum))
    return suite


def with_label_coverage(snapshot: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    due = snapshot["tx_datetime"] < cutoff - pd.Timedelta(DEFAULT_DELAY)
    return snapshot.assign(**{LABEL_DUE_KNOWN: (snapshot["tx_fraud"].notna() | ~due).astype("int8")})


def _describe(result: Any) -> str:
    config = result.expectation_config
    column = config.kwargs.get("column")
    observed = result.result.get("observed_value", result.result.get("unexpected_count"))
    where = f" on {column}" if column else ""
    return f"{config.type}{where}: observed {observed}"


def validate_snapshot(
    snapshot: pd.DataFrame, rules: ValidationRules, cutoff: pd.Timestamp | str, docs_root: Path | None = None
) -> ValidationReport:
    """Run the suite on a snapshot (event columns + labels known at the cutoff, null where unknown)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    cutoff = pd.Timestamp(cutoff)
    root = Path(docs_root or tempfile.mkdtemp(prefix="gx-"))
    context = gx.get_context(mode="file", project_root_dir=str(root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_or_update_pandas("snapshot")
        .add_dataframe_asset("transactions")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=SUITE_NAME))
    for expectation in expectations(rules, cutoff):
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{SUITE_NAME}-validation", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{SUITE_NAME}-checkpoint",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs")],
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": with_label_coverage(snapshot, cutoff)})
    failures = [_describe(r) for run in result.run_results.values() for r in run.results if not r.success]
    docs = root / "gx" / "uncommitted" / "data_docs" / "local_site"
    evaluated = sum(len(run.results) for run in result.run_results.values())
    return ValidationReport(bool(result.success), failures, evaluated, docs)
