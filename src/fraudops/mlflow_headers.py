"""MLflow client plugin (entry point ``mlflow.request_header_provider``): signs every request MLflow's
client sends in as the account this process chose with :func:`fraudops.tracking.use_account`.

A plugin rather than ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``: those would put the password in the
process environment, which every child process inherits.
"""

from __future__ import annotations

from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider

from fraudops import tracking


class AccountHeaders(RequestHeaderProvider):
    def in_context(self) -> bool:
        return tracking.signed_in() is not None

    def request_headers(self) -> dict[str, str]:
        signed_in = tracking.signed_in()
        return {"Authorization": tracking.basic_authorization(*signed_in)} if signed_in else {}
