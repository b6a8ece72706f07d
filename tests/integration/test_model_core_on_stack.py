"""The model core against the real stack: the fraud database round trip and a training registered in
MLflow with its artifacts in MinIO."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from fraudops import fraud_db
from fraudops.cli import main
from fraudops.config.model import SimulatorSettings
from fraudops.connections import pipeline_dsn, producer_dsn
from fraudops.features import build_features
from fraudops.registry import MlflowRegistry
from fraudops.simulator import simulate
from fraudops.storage import s3_client
from fraudops.train import train_model


@pytest.fixture
def dsn(running_stack) -> str:
    return fraud_db.fraud_dsn(running_stack.settings, running_stack.secrets)


def _delete_seed(dsn: str, seed: int) -> None:
    fraud_db.delete_transactions(dsn, f"{seed}-")


def test_simulate_into_postgres_then_read_with_labels_known_at_a_cutoff(running_stack, dsn) -> None:
    seed = random.randint(10_000, 99_999)  # ids start with the seed: this test's rows only
    args = [
        "simulate",
        "--postgres",
        "--customers",
        "60",
        "--terminals",
        "120",
        "--days",
        "10",
        "--start",
        "2026-01-01",
        "--seed",
        str(seed),
        "--label-delay-days",
        "2",
        "--out",
        str(Path(running_stack.settings.data_dir) / f"it-{seed}.parquet"),
    ]
    try:
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 0, first.output
        # a second load of the same days inserts nothing: ids are primary keys
        second = CliRunner().invoke(main, args)
        assert "postgres: 0 new transactions, 0 new labels" in second.output

        expected = simulate(
            SimulatorSettings(
                n_customers=60, n_terminals=120, n_days=10, start_date=date(2026, 1, 1), seed=seed
            )
        )
        cutoff = datetime(2026, 1, 8)
        frame = fraud_db.read_transactions(
            dsn, datetime(2026, 1, 1), datetime(2026, 1, 11), labels_known_at=cutoff
        )
        frame = frame[frame["transaction_id"].str.startswith(f"{seed}-")].reset_index(drop=True)
        assert len(frame) == len(expected)
        assert set(frame["transaction_id"]) == set(expected["transaction_id"])
        # labels arrive 2 days late: at the cutoff only transactions before Jan 6 carry one
        known = frame["tx_fraud"].notna()
        assert (frame.loc[known, "tx_datetime"] <= cutoff - timedelta(days=2)).all()
        assert (frame.loc[~known, "tx_datetime"] > cutoff - timedelta(days=2)).all()
        merged = frame[known].merge(expected, on="transaction_id", suffixes=("", "_true"))
        assert (merged["tx_fraud"] == merged["tx_fraud_true"]).all()
        assert merged["tx_amount"].round(2).equals(merged["tx_amount_true"].round(2))
    finally:
        _delete_seed(dsn, seed)


def test_training_registers_a_version_with_artifacts_in_minio(running_stack) -> None:
    settings = running_stack.settings
    world = SimulatorSettings(
        n_customers=300, n_terminals=600, n_days=90, start_date=date(2026, 1, 1), seed=7
    )
    features = build_features(simulate(world))
    name = f"it-fraud-detector-{random.randint(0, 10**6)}"
    training = settings.training.model_copy(
        update={
            "split": settings.training.split.model_copy(
                update={"train_days": 35, "validation_days": 7, "gap_days": 7, "test_days": 7}
            )
        }
    )
    client = MlflowClient(settings.mlflow_tracking_uri)
    try:
        result = train_model(
            features,
            model_settings=settings.model,
            training=training,
            tracking_uri=settings.mlflow_tracking_uri,
            registry=MlflowRegistry.from_settings(settings, model_name=name),
            family="xgboost",
            data_snapshot="s3://fraud-lake/it/snapshot.parquet",
        )
        version = client.get_model_version(name, result.model_version)
        assert version.tags["family"] == "xgboost"
        assert result.metrics["auc_roc"] > 0.7
        run = client.get_run(result.run_id)
        assert run.data.params["data_snapshot"] == "s3://fraud-lake/it/snapshot.parquet"

        pages = (
            s3_client(settings, running_stack.secrets, "mlflow")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=settings.minio.buckets.mlflow_artifacts, Prefix=f"{run.info.experiment_id}/")
        )
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        assert any(k.endswith("MLmodel") for k in keys), "model files not in MinIO"
        assert any(result.run_id in k and k.endswith(".png") for k in keys), "plots not in MinIO"
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/{result.model_version}")
        assert loaded is not None
    finally:
        client.delete_registered_model(name)


def test_history_and_live_events_read_back_together(running_stack, dsn) -> None:
    """Simulated history has whole seconds, live (wall-clock) events microseconds; one read holds both."""
    seed = random.randint(10_000, 99_999)
    frame = simulate(
        SimulatorSettings(n_customers=20, n_terminals=40, n_days=2, start_date=date(2026, 2, 1), seed=seed)
    )
    live = frame.tail(3).assign(
        transaction_id=[f"{seed}-live-{i}" for i in range(3)],
        tx_datetime=frame["tx_datetime"].max() + pd.to_timedelta([1.25, 2.5, 3.000001], unit="s"),
    )
    settings, secrets = running_stack.settings, running_stack.secrets
    try:
        # written as the producer's role, read as the pipeline's (what extract runs)
        fraud_db.write_transactions(
            producer_dsn(settings, secrets), pd.concat([frame, live], ignore_index=True)
        )
        back = fraud_db.read_transactions(
            pipeline_dsn(settings, secrets), datetime(2026, 2, 1), datetime(2026, 2, 4)
        )
        back = back[back["transaction_id"].str.startswith(f"{seed}-")].set_index("transaction_id")
        assert len(back) == len(frame) + 3
        assert back.loc[f"{seed}-live-2", "tx_datetime"] == live["tx_datetime"].iloc[2]
    finally:
        _delete_seed(dsn, seed)
