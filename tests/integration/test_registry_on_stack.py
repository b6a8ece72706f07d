"""The MLflow registry and the Postgres audit log behind their interfaces, on the real server and database:
aliases move, roll back and are found as the pipeline and the scorer need; a model trained on other
features is refused at load; an audit row written twice under one key is one row."""

from __future__ import annotations

import uuid

import mlflow
import numpy as np
import pytest
from scorer_support import delete_model, register_version, train_tiny_model

from fraudops import fraud_db
from fraudops.audit import AuditRow, PostgresAudit
from fraudops.features import FEATURE_NAMES
from fraudops.registry import MlflowRegistry, NoSuchVersion, SignatureMismatch
from fraudops.tracking import example_frame, experiment_id, model_signature, use_tracking_uri


@pytest.fixture
def registry(running_stack):
    name = f"it-registry-{uuid.uuid4().hex[:8]}"
    yield MlflowRegistry.from_settings(running_stack.settings, model_name=name)
    delete_model(running_stack.settings.mlflow_tracking_uri, name)


def test_aliases_move_roll_back_and_load(running_stack, registry) -> None:
    uri = running_stack.settings.mlflow_tracking_uri
    assert registry.champion() is None and registry.previous() is None  # not even a registered model yet
    first, second = (register_version(uri, registry.model_name, seed, 5, None) for seed in (1, 2))
    assert registry.set_champion(first) is None
    assert registry.set_champion(second) == first
    assert (registry.champion().version, registry.previous().version) == (second, first)
    target, demoted = registry.rollback()
    assert (target.version, demoted) == (first, second)
    assert registry.client.get_model_version_by_alias(registry.model_name, "champion").version == first
    with pytest.raises(NoSuchVersion):
        registry.set_champion("99")
    assert registry.champion().version == first

    model = registry.load(first)
    X = np.random.default_rng(0).random((20, len(FEATURE_NAMES)))
    assert model.family == "xgboost" and model.predict(X).shape == (20,)


def test_a_model_trained_on_other_features_is_refused(running_stack, registry) -> None:
    use_tracking_uri(running_stack.settings.mlflow_tracking_uri)
    model = train_tiny_model(3, 5)
    example = example_frame(np.zeros((2, len(FEATURE_NAMES)))).rename(columns={FEATURE_NAMES[-1]: "retired"})
    with mlflow.start_run(experiment_id=experiment_id("it-scorer")):
        info = model.log_to_mlflow(
            name="model", signature=model_signature(example, np.zeros(2)), input_example=None
        )
    version = registry.register(info.model_uri, {"family": "xgboost"}).version
    assert registry.find({"family": "xgboost"})[0].version == version
    expected = r"unknown \['retired'\]"
    with pytest.raises(SignatureMismatch, match=expected):
        registry.load(version)


def test_an_audit_row_written_twice_under_one_key_is_one_row(running_stack) -> None:
    base = running_stack.settings
    name = f"it-audit-{uuid.uuid4().hex[:8]}"
    settings = base.model_copy(update={"mlflow": base.mlflow.model_copy(update={"model_name": name})})
    audit = PostgresAudit(settings, running_stack.secrets)
    for auc in (0.9, 0.8):  # a task and its retry
        row = AuditRow("evaluation", "1", decision="candidate", metrics={"auc_roc": auc}, key="r/e/x")
        audit.record([row])
    audit.record([AuditRow("promotion", model_version="1", decision="manual")] * 2)
    dsn = fraud_db.fraud_dsn(settings, running_stack.secrets)
    with fraud_db.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT event, metrics, event_key FROM model_metadata WHERE model_name = %s ORDER BY id",
            (settings.mlflow.model_name,),
        )
        rows = cur.fetchall()
        cur.execute("DELETE FROM model_metadata WHERE model_name = %s", (settings.mlflow.model_name,))
        conn.commit()
    assert rows == [
        ("evaluation", {"auc_roc": 0.8}, "r/e/x"), ("promotion", {}, None), ("promotion", {}, None),
    ]  # fmt: skip
