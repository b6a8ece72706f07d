"""MLflow's basic auth on the running stack: nobody is anonymous; the reader reads (the champion
included) and is refused every write to the pipeline's runs and models; the pipeline does every write a
retraining does; the admin manages accounts; any signed-in account reads /metrics (Prometheus)."""

from __future__ import annotations

import uuid

import mlflow
import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException
from scorer_support import delete_model, register_version

from fraudops.features import FEATURE_NAMES
from fraudops.registry import MlflowRegistry, RegistryAccessDenied
from fraudops.tracking import credentials, experiment_id, use_account, use_tracking_uri


def _get(running_stack, path: str, account: str | None, **params) -> requests.Response:
    login = credentials(running_stack.secrets, account) if account else None
    url = f"{running_stack.settings.mlflow_tracking_uri}{path}"
    return requests.get(url, params=params, auth=login, timeout=60)


def _post(running_stack, path: str, account: str, body: dict) -> requests.Response:
    url = f"{running_stack.settings.mlflow_tracking_uri}{path}"
    return requests.post(url, json=body, auth=credentials(running_stack.secrets, account), timeout=60)


@pytest.fixture
def champion_model(running_stack):
    """A model of its own with a @champion, registered by the pipeline."""
    uri = running_stack.settings.mlflow_tracking_uri
    name = f"it-auth-{uuid.uuid4().hex[:8]}"
    use_account(running_stack.secrets, "pipeline")
    version = register_version(uri, name, 1, 5, "champion")
    yield name, version
    use_account(running_stack.secrets, "pipeline")
    delete_model(uri, name)


def test_nobody_is_anonymous_but_health(running_stack) -> None:
    assert _get(running_stack, "/api/2.0/mlflow/experiments/search", None, max_results=1).status_code == 401
    assert _get(running_stack, "/metrics", None).status_code == 401
    wrong = requests.get(
        f"{running_stack.settings.mlflow_tracking_uri}/api/2.0/mlflow/experiments/search",
        params={"max_results": 1},
        auth=(running_stack.secrets["MLFLOW_READER_USER"], "not-the-password"),
        timeout=60,
    )
    assert wrong.status_code == 401
    assert _get(running_stack, "/health", None).status_code == 200


def test_any_account_reads_metrics(running_stack) -> None:
    for account in ("reader", "pipeline", "admin"):
        response = _get(running_stack, "/metrics", account)
        assert response.status_code == 200, account
        assert "mlflow_http_request" in response.text


def test_the_reader_reads_and_loads_the_champion_but_writes_nothing(running_stack, champion_model) -> None:
    name, version = champion_model
    settings = running_stack.settings
    use_tracking_uri(settings.mlflow_tracking_uri)
    experiment = experiment_id("it-scorer")  # the pipeline's (created by it when missing)

    assert use_account(running_stack.secrets, "reader") == running_stack.secrets["MLFLOW_READER_USER"]
    registry = MlflowRegistry.from_settings(settings, model_name=name)
    assert registry.champion().version == version
    model = registry.load(version)
    assert model.predict(np.zeros((3, len(FEATURE_NAMES)))).shape == (3,)
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    assert client.get_experiment(experiment).name == "it-scorer"

    refusals = {
        "create a run": lambda: client.create_run(experiment),
        "set an alias": lambda: client.set_registered_model_alias(name, "champion", version),
        "delete an alias": lambda: client.delete_registered_model_alias(name, "champion"),
        "tag the model": lambda: client.set_registered_model_tag(name, "by", "reader"),
        "rename the experiment": lambda: client.rename_experiment(experiment, "taken-over"),
        "delete the model": lambda: client.delete_registered_model(name),
    }
    for what, write in refusals.items():
        with pytest.raises(MlflowException) as refused:
            write()
        assert refused.value.error_code == "PERMISSION_DENIED", what
    # through the registry: a refusal, named, never "no champion"
    with pytest.raises(RegistryAccessDenied, match="fraudops-reader"):
        registry.set_champion(version)
    assert registry.champion().version == version


def test_a_missing_champion_is_none_for_the_reader_not_a_refusal(running_stack) -> None:
    use_account(running_stack.secrets, "reader")
    registry = MlflowRegistry.from_settings(
        running_stack.settings, model_name=f"it-none-{uuid.uuid4().hex[:8]}"
    )
    assert registry.champion() is None


def test_the_pipeline_does_every_retraining_write(running_stack) -> None:
    uri = running_stack.settings.mlflow_tracking_uri
    use_tracking_uri(uri)
    use_account(running_stack.secrets, "pipeline")
    name = f"it-auth-{uuid.uuid4().hex[:8]}"
    experiment = experiment_id(f"it-auth-{uuid.uuid4().hex[:8]}")
    try:
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_metric("auc", 0.9)
            mlflow.log_dict({"ok": True}, "check.json")
        first = register_version(uri, name, 1, 5, None)
        second = register_version(uri, name, 2, 5, None)
        registry = MlflowRegistry.from_settings(running_stack.settings, model_name=name)
        assert registry.set_champion(first) is None
        assert registry.set_champion(second) == first
        target, _ = registry.rollback()
        assert target.version == first
        # the production model's name too, though another account may have created it
        assert _post(
            running_stack,
            "/api/2.0/mlflow/registered-models/set-tag",
            "reader",
            {"name": running_stack.settings.mlflow.model_name, "key": "probe", "value": "1"},
        ).status_code in (403, 404)
    finally:
        delete_model(uri, name)
        mlflow.MlflowClient(uri).delete_experiment(experiment)


def test_the_admin_manages_accounts_and_the_accounts_are_no_admins(running_stack) -> None:
    for account in ("pipeline", "reader"):
        user = running_stack.secrets[f"MLFLOW_{account.upper()}_USER"]
        response = _get(running_stack, "/api/2.0/mlflow/users/get", "admin", username=user)
        assert response.status_code == 200
        assert response.json()["user"]["is_admin"] is False
        # an account may not look up another (admins only)
        other = "reader" if account == "pipeline" else "pipeline"
        assert _get(running_stack, "/api/2.0/mlflow/users/get", other, username=user).status_code == 403
    created = _post(
        running_stack,
        "/api/2.0/mlflow/users/create",
        "pipeline",
        {"username": "intruder", "password": "x" * 16},
    )
    assert created.status_code == 403
