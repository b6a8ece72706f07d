"""MLflow's authentication on the stack: the basic-auth configuration the server reads, and the accounts
(`fraudops stack init-mlflow`, run by `make up` once MLflow answers).

Three accounts, their names and passwords in ``env/mlflow.env`` (:data:`fraudops.tracking.ACCOUNTS`):

- ``admin``: people in the UI, and this init step; created by the server itself from the configuration;
- ``pipeline``: the retraining pipeline; may write every experiment and the registered model
  (``mlflow.model_name``): runs, versions, aliases;
- ``reader``: the scorer, the console, the platform exporter and Prometheus; reads only
  (``default_permission`` READ, no grant).

Nobody is anonymous: MLflow answers 401 to a request without a valid login, ``/health`` aside.
"""

from __future__ import annotations

import configparser
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudops.config.settings import Settings
from fraudops.connections import component_url
from fraudops.mlflow_auth import CONFIG_SECTION, SECRET_KEY, SECRET_KEY_OPTION
from fraudops.private_files import write_private
from fraudops.tracking import ACCOUNTS, credentials

# the permission of every signed-in account on what it has no grant for
DEFAULT_PERMISSION = "READ"
# seconds a verified login stays cached in a server worker
AUTH_CACHE_TTL_S = 60


class MlflowAuthError(RuntimeError):
    pass


@dataclass(frozen=True)
class Grant:
    """A permission of one account on MLflow resources (``resource_id`` may be ``*``: every one)."""

    resource_type: str
    resource_id: str
    permission: str


def auth_config_text(settings: Settings, secrets: Mapping[str, str]) -> str:
    """The basic-auth configuration (``MLFLOW_AUTH_CONFIG_PATH``): users and grants in MLflow's own
    database (tables of their own, ``alembic_version_auth``), default READ, the admin from the secrets."""
    admin = _login(secrets, "admin")
    config = configparser.ConfigParser(interpolation=None)
    config["mlflow"] = {
        "default_permission": DEFAULT_PERMISSION,
        "database_uri": component_url(settings, secrets, "mlflow"),
        "admin_username": admin[0],
        "admin_password": admin[1],
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        # a verified login is cached (per worker) instead of a PBKDF2 hash on every request: the scorer and
        # the exporters poll, and the hash costs a busy 2-core machine seconds; a password changed through
        # the API is dropped at once on the worker that changed it, on the others within this TTL
        "auth_cache_ttl_seconds": str(AUTH_CACHE_TTL_S),
    }
    # ours, not MLflow's: the app reads the key from here instead of the server's environment
    config[CONFIG_SECTION] = {SECRET_KEY_OPTION: secrets[SECRET_KEY]}
    text = io.StringIO()
    config.write(text)
    return text.getvalue()


def write_auth_config(path: Path, settings: Settings, secrets: Mapping[str, str]) -> Path:
    """Write the configuration atomically, readable by its owner only (it holds passwords and a key)."""
    return write_private(path, auth_config_text(settings, secrets))


def server_env(config_path: Path) -> dict[str, str]:
    """What the server process needs beside the tracking store's settings: the configuration's path only
    (the Flask secret key is in the file, :func:`fraudops.mlflow_auth.create_app` reads it)."""
    return {"MLFLOW_AUTH_CONFIG_PATH": str(config_path)}


def account_grants(settings: Settings) -> dict[str, list[Grant]]:
    """account -> what it is granted beyond ``default_permission``. The pipeline may edit every experiment
    (the training, validation and drift runs; one created before auth was on included) and manage the
    registered model (new versions, aliases). The reader gets nothing: READ by default."""
    return {
        "pipeline": [
            Grant("experiment", "*", "EDIT"),
            Grant("registered_model", settings.mlflow.model_name, "MANAGE"),
        ],
        "reader": [],
    }


def _login(secrets: Mapping[str, str], account: str) -> tuple[str, str]:
    login = credentials(secrets, account)
    if login is None:
        raise MlflowAuthError(f"env/mlflow.env has no {' / '.join(ACCOUNTS[account])}: run `make secrets`")
    return login


class _Api:
    """MLflow's auth REST API, signed in as the admin."""

    def __init__(self, base_url: str, admin: tuple[str, str], timeout: float = 30.0) -> None:
        import requests

        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = admin
        self.timeout = timeout

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}{path}", timeout=self.timeout, **kwargs)
        if response.status_code == 401:
            raise MlflowAuthError(
                f"MLflow at {self.base} refused the admin's login: MLFLOW_ADMIN_PASSWORD in env/mlflow.env "
                "is not the admin's password (it is set once, when the server creates the admin)"
            )
        return response

    def grant(self, username: str, grant: Grant) -> None:
        """Give ``username`` exactly ``grant`` (MLflow's REST API creates a grant once and then refuses
        RESOURCE_ALREADY_EXISTS: one of another level is revoked and granted again)."""
        where = {"username": username, "resource_type": grant.resource_type, "resource_id": grant.resource_id}
        grant_path = "/api/3.0/mlflow/users/permissions/grant"
        response = self.call("POST", grant_path, json={**where, "permission": grant.permission})
        if response.status_code == 400 and response.json().get("error_code") == "RESOURCE_ALREADY_EXISTS":
            self.call("POST", "/api/3.0/mlflow/users/permissions/revoke", json=where).raise_for_status()
            response = self.call("POST", grant_path, json={**where, "permission": grant.permission})
        response.raise_for_status()

    def has_user(self, username: str) -> bool:
        response = self.call("GET", "/api/2.0/mlflow/users/get", params={"username": username})
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True


def init_accounts(settings: Settings, secrets: Mapping[str, str]) -> dict[str, str]:
    """Create or update the pipeline and reader accounts: passwords equal to ``env/mlflow.env``, not
    admins, their grants (:func:`account_grants`). Idempotent. Returns account -> what was done."""
    admin = _login(secrets, "admin")
    api = _Api(settings.mlflow_tracking_uri, admin)
    done: dict[str, str] = {}
    for account, grants in account_grants(settings).items():
        user, password = _login(secrets, account)
        if api.has_user(user):
            login = {"username": user, "password": password}
            api.call("PATCH", "/api/2.0/mlflow/users/update-password", json=login).raise_for_status()
            done[account] = f"{user}: password updated"
        else:
            api.call(
                "POST", "/api/2.0/mlflow/users/create", json={"username": user, "password": password}
            ).raise_for_status()
            done[account] = f"{user}: created"
        # an account is an admin only by hand: take it back, admins pass every check
        api.call(
            "PATCH", "/api/2.0/mlflow/users/update-admin", json={"username": user, "is_admin": False}
        ).raise_for_status()
        for grant in grants:
            api.grant(user, grant)
    return done
