"""MLflow's accounts, pure parts: the basic-auth configuration the server reads, who gets which grant,
the in-process login of the clients (its header, no environment variable), the server app's /metrics
rule, and a 401/403 never read as "no champion"."""

from __future__ import annotations

import base64
import configparser
import os
from pathlib import Path
from unittest import mock

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, RESOURCE_DOES_NOT_EXIST

from fraudops import tracking
from fraudops.config.settings import load_settings
from fraudops.mlflow_auth import _secret_key_from_config
from fraudops.mlflow_headers import AccountHeaders
from fraudops.monitoring.prometheus import ConfigFiles, prometheus_config, write_configs
from fraudops.registry import RegistryAccessDenied, is_absent, version_by_alias
from fraudops.stack.mlflow_auth import account_grants, auth_config_text, server_env, write_auth_config

SECRETS = {
    "MLFLOW_ADMIN_USER": "admin",
    "MLFLOW_ADMIN_PASSWORD": "admin-secret",
    "MLFLOW_PIPELINE_USER": "fraudops-pipeline",
    "MLFLOW_PIPELINE_PASSWORD": "pipeline-secret",
    "MLFLOW_READER_USER": "fraudops-reader",
    "MLFLOW_READER_PASSWORD": "reader-secret",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "flask-secret",
    "MLFLOW_DB_PASSWORD": "db-secret",
    "FLOWER_PASSWORD": "flower-secret",
    "ALERT_WEBHOOK_URL": "",
}


@pytest.fixture(autouse=True)
def anonymous_after() -> None:
    yield
    tracking.use_account({}, "reader")


def test_the_auth_config_keeps_users_in_mlflows_database_reads_by_default_and_names_the_admin() -> None:
    settings = load_settings()
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(auth_config_text(settings, SECRETS))
    section = config["mlflow"]
    assert section["default_permission"] == "READ"
    assert section["admin_username"] == "admin"
    assert section["admin_password"] == "admin-secret"
    uri = section["database_uri"]
    assert uri.startswith("postgresql") and uri.endswith(f"/{settings.postgres.databases['mlflow']}")
    assert "db-secret" in uri


def test_the_auth_config_is_written_for_its_owner_only(tmp_path: Path) -> None:
    path = write_auth_config(tmp_path / "run" / "auth.ini", load_settings(), SECRETS)
    assert path.stat().st_mode & 0o077 == 0
    # the server's environment names the file only: the Flask key is in it, where the app reads it
    assert server_env(path) == {"MLFLOW_AUTH_CONFIG_PATH": str(path)}
    with mock.patch.dict(os.environ, {"MLFLOW_AUTH_CONFIG_PATH": str(path)}):
        os.environ.pop("MLFLOW_FLASK_SERVER_SECRET_KEY", None)
        assert _secret_key_from_config() == "flask-secret"


def test_without_an_admin_in_the_secrets_the_config_is_refused() -> None:
    with pytest.raises(RuntimeError, match="MLFLOW_ADMIN_PASSWORD"):
        auth_config_text(load_settings(), {k: v for k, v in SECRETS.items() if "ADMIN" not in k})


def test_the_pipeline_writes_experiments_and_its_model_and_the_reader_gets_no_grant() -> None:
    settings = load_settings()
    grants = account_grants(settings)
    assert grants["reader"] == []
    pipeline = {(g.resource_type, g.resource_id): g.permission for g in grants["pipeline"]}
    assert pipeline == {
        ("experiment", "*"): "EDIT",
        ("registered_model", settings.mlflow.model_name): "MANAGE",
    }
    assert "admin" not in grants  # the server creates the admin; nobody else is made one


def test_use_account_signs_requests_in_through_the_header_plugin_not_the_environment() -> None:
    headers = AccountHeaders()
    assert not headers.in_context()
    assert tracking.use_account(SECRETS, "reader") == "fraudops-reader"
    assert headers.in_context()
    value = headers.request_headers()["Authorization"]
    assert value.startswith("Basic ")
    assert base64.b64decode(value.removeprefix("Basic ")).decode() == "fraudops-reader:reader-secret"
    assert tracking.use_account(SECRETS, "pipeline") == "fraudops-pipeline"
    assert "pipeline-secret" in base64.b64decode(headers.request_headers()["Authorization"][6:]).decode()
    assert not any("secret" in v for v in os.environ.values() if v in SECRETS.values())
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ


def test_without_the_accounts_secrets_the_client_stays_anonymous_and_an_unknown_account_fails() -> None:
    assert tracking.use_account({}, "pipeline") is None
    assert not AccountHeaders().in_context()
    with pytest.raises(KeyError, match="no MLflow account"):
        tracking.use_account(SECRETS, "root")


def test_the_header_plugin_is_registered_with_mlflow() -> None:
    from mlflow.tracking.request_header.registry import resolve_request_headers

    tracking.use_account(SECRETS, "reader")
    assert resolve_request_headers()["Authorization"] == tracking.basic_authorization(
        "fraudops-reader", "reader-secret"
    )


def test_prometheus_scrapes_mlflow_as_the_reader_with_a_private_password_file(tmp_path: Path) -> None:
    settings = load_settings()
    files = ConfigFiles(tmp_path)
    write_configs(settings, SECRETS, files, "flower")
    job = next(
        j for j in prometheus_config(settings, files, "flower", "fraudops-reader")["scrape_configs"]
        if j["job_name"] == "mlflow"
    )  # fmt: skip
    assert job["basic_auth"] == {"username": "fraudops-reader", "password_file": str(files.mlflow_password)}
    assert files.mlflow_password.read_text() == "reader-secret"
    assert files.mlflow_password.stat().st_mode & 0o077 == 0
    assert "reader-secret" not in files.prometheus.read_text()


class _Client:
    """MLflow's answers to an alias lookup, as basic auth gives them to a non-admin."""

    def __init__(self, alias_error: int, model_aliases: dict[str, str] | None) -> None:
        self.alias_error, self.model_aliases = alias_error, model_aliases

    def get_model_version_by_alias(self, name: str, alias: str) -> None:
        raise MlflowException("refused", error_code=self.alias_error)

    def get_registered_model(self, name: str) -> object:
        if self.model_aliases is None:
            raise MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST)
        return type("Model", (), {"aliases": self.model_aliases})()


def test_a_refusal_is_not_absent() -> None:
    assert is_absent(MlflowException("gone", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_absent(MlflowException("no", error_code=PERMISSION_DENIED))


def test_a_403_on_the_alias_of_a_model_that_does_not_exist_is_no_champion() -> None:
    assert version_by_alias(_Client(PERMISSION_DENIED, None), "m", "champion") is None
    # the model exists without the alias: still none
    assert version_by_alias(_Client(PERMISSION_DENIED, {"previous": "1"}), "m", "champion") is None


def test_a_403_on_an_alias_that_exists_is_a_refusal_naming_the_account() -> None:
    tracking.use_account(SECRETS, "reader")
    with pytest.raises(RegistryAccessDenied, match="fraudops-reader.*m@champion"):
        version_by_alias(_Client(PERMISSION_DENIED, {"champion": "3"}), "m", "champion")


def test_the_server_app_lets_any_signed_in_account_read_metrics_only() -> None:
    """The wrapper around basic auth's guard: /metrics needs a login, everything else the guard."""
    from flask import Flask, Response

    from fraudops.mlflow_auth import _metrics_for_signed_in

    app = Flask(__name__)
    calls: list[str] = []

    def guard() -> Response:
        calls.append("guard")
        return Response("forbidden", status=403)

    hook = _metrics_for_signed_in(guard)
    import mlflow.server.auth as basic_auth

    logins = {"ok": object(), "anonymous": Response("login", status=401)}
    for login, expected in (("ok", None), ("anonymous", 401)):
        original = basic_auth.authenticate_request
        basic_auth.authenticate_request = lambda login=login: logins[login]  # type: ignore[assignment]
        try:
            with app.test_request_context("/metrics"):
                result = hook()
        finally:
            basic_auth.authenticate_request = original
        assert (result.status_code if result is not None else None) == expected
    assert calls == []
    with app.test_request_context("/api/2.0/mlflow/experiments/create"):
        assert hook().status_code == 403
    assert calls == ["guard"]
