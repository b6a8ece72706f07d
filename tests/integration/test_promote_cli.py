"""`fraudops promote` and `fraudops rollback` against the real registry, database and Kafka."""

from __future__ import annotations

import json
import uuid

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from fraudops import fraud_db
from fraudops.cli import main
from fraudops.signals import read_model_updates


@pytest.fixture
def model(running_stack):
    """A throw-away registered model with two versions; the CLI is pointed at it through the settings."""
    name = f"it-promote-{uuid.uuid4().hex[:8]}"
    mlflow.set_tracking_uri(running_stack.settings.mlflow_tracking_uri)
    mlflow.set_experiment("stack-integration")
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    for _ in range(2):
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                LogisticRegression().fit(x, [0, 0, 1, 1]), name="model", registered_model_name=name
            )
    fraud_db.create_tables(fraud_db.fraud_dsn(running_stack.settings, running_stack.secrets))
    yield name
    MlflowClient(running_stack.settings.mlflow_tracking_uri).delete_registered_model(name)


def _cli(name: str, *args: str):
    return CliRunner().invoke(main, list(args), env={"FRAUDOPS_MLFLOW__MODEL_NAME": name})


def test_promote_then_rollback_moves_aliases_records_and_signals(running_stack, model) -> None:
    client = MlflowClient(running_stack.settings.mlflow_tracking_uri)
    first = _cli(model, "promote", "--version", "1")
    assert first.exit_code == 0, first.output
    second = _cli(model, "promote", "--version", "2", "--reason", "better on last week")
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["previous"] == "1"
    assert client.get_model_version_by_alias(model, "champion").version == "2"
    assert client.get_model_version_by_alias(model, "previous").version == "1"

    back = _cli(model, "rollback")
    assert back.exit_code == 0, back.output
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    assert client.get_model_version_by_alias(model, "previous").version == "2"

    updates = read_model_updates(running_stack.settings.kafka_bootstrap_servers, model)
    assert [(u.version, u.action) for u in updates] == [("1", "manual"), ("2", "manual"), ("1", "rollback")]
    with fraud_db.connect(fraud_db.fraud_dsn(running_stack.settings, running_stack.secrets)) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT model_version, event, reason FROM model_metadata WHERE model_name = %s ORDER BY id",
                (model,),
            )
            rows = cur.fetchall()
    assert [(r[0], r[1]) for r in rows] == [("1", "promotion"), ("2", "promotion"), ("1", "rollback")]
    assert rows[1][2] == "better on last week"


def test_rollback_without_a_previous_version_fails_clearly(running_stack, model) -> None:
    result = _cli(model, "rollback")
    assert result.exit_code != 0
    assert "no @previous version" in result.output
