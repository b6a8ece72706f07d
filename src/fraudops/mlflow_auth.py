"""The stack's MLflow server app (entry point ``mlflow.app``: ``fraudops-basic-auth``): MLflow's basic-auth
app, plus read access to ``/metrics`` for any signed-in account.

MLflow's basic auth has no validator for the Prometheus exporter's ``/metrics`` and so lets admins only
(fail-closed); Prometheus scrapes it as the read-only account instead of holding the admin password.
Configured like ``basic-auth``: ``MLFLOW_AUTH_CONFIG_PATH`` and ``MLFLOW_FLASK_SERVER_SECRET_KEY``
(:mod:`fraudops.stack.mlflow_auth`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

METRICS_PATH = "/metrics"


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


def create_app(app: Any = None) -> Any:
    import mlflow.server.auth as basic_auth
    from mlflow.server import app as flask_app

    flask = app if app is not None else flask_app
    served = basic_auth.create_app(flask)
    hooks = flask.before_request_funcs[None]
    position = hooks.index(basic_auth._before_request)
    hooks[position] = _metrics_for_signed_in(basic_auth._before_request)
    return served
