"""The stack's MLflow server app (entry point ``mlflow.app``: ``fraudops-basic-auth``): MLflow's basic-auth
app, plus read access to ``/metrics`` for any signed-in account.

MLflow's basic auth has no validator for the Prometheus exporter's ``/metrics`` and so lets admins only
(fail-closed); Prometheus scrapes it as the read-only account instead of holding the admin password.
Configured like ``basic-auth`` by ``MLFLOW_AUTH_CONFIG_PATH`` (:mod:`fraudops.stack.mlflow_auth`), except
that the Flask secret key comes from that file, not from ``MLFLOW_FLASK_SERVER_SECRET_KEY`` in the server's
environment, where every process of the same user could read it (``/proc/<pid>/environ``).
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable
from typing import Any

METRICS_PATH = "/metrics"
# the Flask secret key the basic-auth app needs (CSRF of its sign-up form), shared by the workers: secrets
# file key, and where the auth configuration keeps it (MLflow reads that file's [mlflow] section only)
SECRET_KEY = "MLFLOW_FLASK_SERVER_SECRET_KEY"
CONFIG_SECTION = "fraudops"
SECRET_KEY_OPTION = "flask_secret_key"


def _metrics_for_signed_in(guard: Callable[[], Any]) -> Callable[[], Any]:
    """``guard`` (basic auth's before-request hook), except that ``/metrics`` needs a login only."""
    import mlflow.server.auth as basic_auth
    from flask import Response, request

    def before_request() -> Any:
        if request.path != METRICS_PATH:
            return guard()
        authorization = basic_auth.authenticate_request()
        # a 401 response when anonymous or the password is wrong; else on to the exporter
        return authorization if isinstance(authorization, Response) else None

    return before_request


def _secret_key_from_config() -> str | None:
    path = os.environ.get("MLFLOW_AUTH_CONFIG_PATH")
    if not path:
        return None
    config = configparser.ConfigParser(interpolation=None)
    config.read(path)
    return config.get(CONFIG_SECTION, SECRET_KEY_OPTION, fallback=None)


def create_app(app: Any = None) -> Any:
    import mlflow.server.auth as basic_auth
    from mlflow.server import app as flask_app

    flask = app if app is not None else flask_app
    key = os.environ.get(SECRET_KEY) or _secret_key_from_config()
    # MLflow reads the key from the environment while it builds the app; it is there for that call only,
    # so no process this worker starts inherits it
    os.environ[SECRET_KEY] = key or ""
    try:
        served = basic_auth.create_app(flask)
    finally:
        os.environ.pop(SECRET_KEY, None)
    hooks = flask.before_request_funcs[None]
    position = hooks.index(basic_auth._before_request)
    hooks[position] = _metrics_for_signed_in(basic_auth._before_request)
    return served
