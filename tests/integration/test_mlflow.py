"""MLflow: artifacts are proxied into MinIO; the registry holds versions and aliases across a restart."""

from __future__ import annotations

import uuid

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from fraudops.storage import s3_client


@pytest.fixture
def tracking(running_stack):
    mlflow.set_tracking_uri(running_stack.settings.mlflow_tracking_uri)
    mlflow.set_experiment("stack-integration")
    yield MlflowClient()


def test_run_artifact_lands_in_minio(running_stack, tracking, tmp_path) -> None:
    settings = running_stack.settings
    note = tmp_path / "note.txt"
    note.write_text(f"hello {uuid.uuid4()}")
    with mlflow.start_run() as run:
        mlflow.log_param("kind", "integration")
        mlflow.log_artifact(str(note))
    # the server proxies artifacts: the client wrote through HTTP, the object sits in the bucket
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    key = f"{run.info.experiment_id}/{run.info.run_id}/artifacts/note.txt"
    body = (
        s3_client(settings, running_stack.secrets, "mlflow")
        .get_object(Bucket=settings.minio.buckets.mlflow_artifacts, Key=key)["Body"]
        .read()
    )
    assert body.decode() == note.read_text()


def test_registered_version_alias_survive_restart(running_stack, tracking) -> None:
    name = f"it-model-{uuid.uuid4().hex[:8]}"
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 0, 1, 1])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, input_example=x[:1])
    version = info.registered_model_version
    tracking.set_registered_model_alias(name, "champion", version)

    running_stack.stack.down(["mlflow"])
    running_stack.stack.start(["mlflow"])

    restarted = MlflowClient()
    by_alias = restarted.get_model_version_by_alias(name, "champion")
    assert by_alias.version == str(version)
    loaded = mlflow.sklearn.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(x)) == list(model.predict(x))
    restarted.delete_registered_model(name)
