"""The DAG and `fraudops train --cutoff FILE` train the same model from the same data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fraudops.commands.model import train_command
from fraudops.config.settings import load_settings
from fraudops.features import build_features, feature_matrix
from fraudops.labels import label_records
from fraudops.registry import load_model
from fraudops.schema import EVENT_COLUMNS
from fraudops.simulator import write_parquet
from fraudops.train import train_at_cutoff
from references import labels_known_at


def _extracted(transactions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """What the DAG's extract reads from the database: the transactions before the cutoff and the labels
    published by then (fraud_db.read_transactions' join, on the label records the history loader stores)."""
    known = labels_known_at(label_records(transactions), cutoff)
    events = transactions.loc[transactions["tx_datetime"] < cutoff, list(EVENT_COLUMNS)]
    return events.merge(known[["transaction_id", "tx_fraud", "tx_fraud_scenario"]], "left", "transaction_id")


@pytest.mark.parametrize("family", ["xgboost", "catboost"])
def test_the_dag_and_the_cli_train_the_same_model(
    family: str, small_transactions: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "FRAUDOPS_TRAINING__EXPERIMENT": "paths",
        "FRAUDOPS_TRAINING__LATENCY_ROWS": "10",
        "FRAUDOPS_TRAINING__SPLIT__TRAIN_DAYS": "21",
        "FRAUDOPS_TRAINING__SPLIT__VALIDATION_DAYS": "7",
        "FRAUDOPS_TRAINING__SPLIT__TEST_DAYS": "14",
        "FRAUDOPS_MODEL__XGBOOST__N_ESTIMATORS": "40",
        "FRAUDOPS_MODEL__CATBOOST__ITERATIONS": "60",
    }.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # a run the afternoon after a day, the way the daily DAG runs: its last week's labels are not known
    cutoff = (
        small_transactions["tx_datetime"].max().floor("D") - pd.Timedelta(days=2) + pd.Timedelta(hours=14)
    )

    dag = train_at_cutoff(
        build_features(_extracted(small_transactions, cutoff)),
        cutoff,
        model_settings=settings.model,
        training=settings.training,
        tracking_uri=uri,
        family=family,
        artifact_location=str(tmp_path / "artifacts"),
    )

    source = tmp_path / "transactions.parquet"
    write_parquet(small_transactions, str(source))
    result = CliRunner().invoke(train_command, [
        "--family", family, "--data", str(source), "--cutoff", f"{cutoff:%Y-%m-%d %H:%M:%S}",
        "--tracking-uri", uri,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    cli = json.loads(result.stdout)[0]

    assert cli["test_window"].startswith(str(dag.windows.test_start.date()))
    assert cli["metrics"]["average_precision"] == pytest.approx(dag.metrics["average_precision"], abs=1e-5)
    dag_params = {k: v for k, v in dag.params.items() if k not in ("data_snapshot",)}
    from mlflow import MlflowClient

    logged = MlflowClient(uri).get_run(cli["run_id"]).data.params
    assert {k: logged[k] for k in dag_params} == {k: str(v) for k, v in dag_params.items()}
    X = feature_matrix(build_features(small_transactions))
    np.testing.assert_allclose(load_model(cli["model_uri"]).predict(X), dag.model.predict(X), rtol=1e-6)
