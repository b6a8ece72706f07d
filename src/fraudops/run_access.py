"""Who may ask a retraining run for more than its defaults.

``force`` promotes a candidate over a better champion and ``snapshot_uri`` trains on data of the caller's
choosing: both step around the gates that protect production, so a person may ask for them only with one
of ``pipeline.privileged_roles`` (Airflow's Op and Admin by default). A run with the defaults (every
scheduled run, a drift-triggered run) needs no privilege. The decision is a plain function; the DAG asks
Airflow's auth manager for the triggering person's roles.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

# parameters of the retraining whose non-default value needs a privileged role
PRIVILEGED_PARAMS = ("force", "snapshot_uri")


class RunNotAllowed(PermissionError):
    pass


def privileged_requests(params: Mapping[str, Any]) -> list[str]:
    """The privileged parameters ``params`` set to something other than their default."""
    return [name for name in PRIVILEGED_PARAMS if params.get(name)]


def check_run_allowed(
    params: Mapping[str, Any], user: str | None, roles: Collection[str], allowed: Collection[str]
) -> None:
    """Raise :class:`RunNotAllowed` when ``params`` ask for a privileged option that ``user`` (with
    ``roles``) may not use; an unknown user may use none."""
    requested = privileged_requests(params)
    if not requested or set(roles) & set(allowed):
        return
    who = f"user {user!r} (roles: {', '.join(sorted(roles)) or 'none'})" if user else "an unknown user"
    allowed_text = ", ".join(sorted(allowed))
    raise RunNotAllowed(
        f"{', '.join(requested)} may only be set by a person with one of the roles {allowed_text}"
        f" (pipeline.privileged_roles); this run was triggered by {who}: trigger it without them, or ask"
        " an operator"
    )


def airflow_roles(settings: Any, secrets: Mapping[str, str], user: str) -> set[str]:
    """The roles of ``user`` in Airflow's FAB auth manager (its REST API, as the stack's admin)."""
    from fraudops.airflow_api import AirflowApi

    api = AirflowApi(settings, secrets)
    return {role["name"] for role in api.fab_user(user).get("roles", [])}


def authorize_run(
    settings: Any, secrets: Mapping[str, str], params: Mapping[str, Any], user: str | None
) -> None:
    """The DAG's check: the triggering person's roles are looked up only when a privileged option is set."""
    if not privileged_requests(params):
        return
    roles = airflow_roles(settings, secrets, user) if user else set()
    check_run_allowed(params, user, roles, settings.pipeline.privileged_roles)
