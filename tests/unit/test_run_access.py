"""Who may trigger a retraining with force or a custom snapshot."""

from __future__ import annotations

import pytest

from fraudops.config.settings import load_settings
from fraudops.run_access import RunNotAllowed, authorize_run, check_run_allowed, privileged_requests

ALLOWED = ("Admin", "Op")


def test_defaults_need_no_privilege() -> None:
    params = {"force": False, "snapshot_uri": "", "dry_run": True, "families": ["xgboost"]}
    assert privileged_requests(params) == []
    check_run_allowed(params, "someone", {"Viewer"}, ALLOWED)
    check_run_allowed(params, None, set(), ALLOWED)


@pytest.mark.parametrize(
    "params",
    [{"force": True}, {"snapshot_uri": "s3://fraud-lake/mine.parquet"}, {"force": True, "snapshot_uri": "x"}],
)
def test_force_or_a_snapshot_needs_op_or_admin(params) -> None:
    for roles in ({"Op"}, {"Admin"}, {"User", "Op"}):
        check_run_allowed(params, "operator", roles, ALLOWED)
    with pytest.raises(RunNotAllowed, match=r"user 'analyst' \(roles: User\)") as refused:
        check_run_allowed(params, "analyst", {"User"}, ALLOWED)
    assert all(name in str(refused.value) for name in privileged_requests(params))
    with pytest.raises(RunNotAllowed, match="an unknown user"):
        check_run_allowed(params, None, set(), ALLOWED)


def test_roles_are_not_looked_up_for_a_default_run() -> None:
    # no Airflow answers in the unit tier: a lookup would fail
    authorize_run(load_settings(), {}, {"force": False, "snapshot_uri": ""}, "anyone")
    with pytest.raises(RunNotAllowed, match="an unknown user"):
        authorize_run(load_settings(), {}, {"force": True}, None)


def test_the_roles_come_from_the_settings() -> None:
    settings = load_settings(pipeline={"privileged_roles": ["ModelOwner"]})
    assert settings.pipeline.privileged_roles == ["ModelOwner"]
    assert load_settings().pipeline.privileged_roles == ["Admin", "Op"]
