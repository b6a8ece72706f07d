"""The console's pure parts: users and password hashes, the alert query builder, the shaping of charts,
reason codes from the SHAP contributions of real (tiny) XGBoost and CatBoost models, and the grants."""

from __future__ import annotations

import json
import stat
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudops.config.settings import load_settings
from fraudops.console import queries, views
from fraudops.console.cli import streamlit_argv
from fraudops.console.feedback import NotAllowed, submit_label
from fraudops.console.users import User, UserStore, ensure_default_users, hash_password, verify_password
from fraudops.features import FEATURE_NAMES
from fraudops.stack.postgres import console_grants


# -- users -------------------------------------------------------------------------------------------------
def test_password_hash_verifies_only_the_password_and_is_salted() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert hash_password("correct horse") != stored  # a fresh salt each time
    assert not verify_password("x", "md5$abc")


def test_user_store_keeps_roles_and_hashes_privately(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "env" / "console-users.json")
    store.set_user("ana", "analyst", "s3cret-pass")
    store.set_user("vic", "viewer", "other-pass")
    assert store.authenticate("ana", "s3cret-pass") == User("ana", "analyst")
    assert store.authenticate("vic", "other-pass") == User("vic", "viewer")
    assert store.authenticate("ana", "wrong-pass") is None
    assert store.authenticate("nobody", "s3cret-pass") is None
    text = store.path.read_text()
    assert "s3cret-pass" not in text and json.loads(text)["users"]["ana"]["role"] == "analyst"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="role"):
        store.set_user("eve", "admin", "long-enough")
    with pytest.raises(ValueError, match="8 characters"):
        store.set_user("eve", "viewer", "short")
    assert store.remove_user("vic") and not store.remove_user("vic")
    assert store.names() == ["ana"]


def test_default_users_come_from_the_secrets_and_are_never_overwritten(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.json")
    secrets = {"CONSOLE_ANALYST_PASSWORD": "first-analyst", "CONSOLE_VIEWER_PASSWORD": "first-viewer"}
    assert ensure_default_users(store, secrets) == ["analyst", "viewer"]
    store.set_user("analyst", "analyst", "changed-by-hand")
    assert ensure_default_users(store, secrets) == []
    assert store.authenticate("analyst", "changed-by-hand") is not None
    assert store.authenticate("analyst", "first-analyst") is None
    assert store.authenticate("viewer", "first-viewer") == User("viewer", "viewer")


def test_only_analysts_may_label_and_a_refusal_writes_nothing() -> None:
    assert User("a", "analyst").can_label and not User("v", "viewer").can_label

    class Untouchable:  # any use of the connection would fail the test
        def cursor(self) -> None:
            raise AssertionError("a refused label reached the database")

    for who in (User("v", "viewer"), None):
        with pytest.raises(NotAllowed):
            submit_label(Untouchable(), who, "tx-1", "fraud", "")


# -- queries -----------------------------------------------------------------------------------------------
def test_alert_query_filters_pages_and_orders_stably() -> None:
    flt = queries.AlertFilter(
        decisions=("BLOCK",),
        since=datetime(2026, 1, 1),
        min_amount=10.0,
        customer_id=42,
        terminal_id=7,
        statuses=("open",),
    )
    sql, params = queries.alerts_query(flt, page=2, page_size=50)
    assert params == {
        "decisions": ["BLOCK"],
        "since": datetime(2026, 1, 1),
        "min_amount": 10.0,
        "customer_id": 42,
        "terminal_id": 7,
        "statuses": ["open"],
        "limit": 50,
        "offset": 100,
    }
    for clause in ("a.tx_amount >= %(min_amount)s", "a.customer_id = %(customer_id)s", "a.status = ANY"):
        assert clause in sql
    assert "max_amount" not in sql and "until" not in sql
    assert sql.endswith("ORDER BY a.tx_datetime DESC, a.alert_id DESC LIMIT %(limit)s OFFSET %(offset)s")


def test_alert_filter_and_paging_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        queries.AlertFilter(decisions=("APPROVE",))
    with pytest.raises(ValueError):
        queries.AlertFilter(min_amount=5, max_amount=1)
    with pytest.raises(ValueError):
        queries.AlertFilter(since=datetime(2026, 2, 1), until=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        queries.alerts_query(queries.AlertFilter(), 0, queries.MAX_PAGE_SIZE + 1)
    with pytest.raises(ValueError):
        queries.check_verdict("maybe", "")
    assert queries.check_verdict("fraud", "") == 1 and queries.check_verdict("genuine", "ok") == 0


# -- views -------------------------------------------------------------------------------------------------
def test_decision_rates_and_throughput_per_bucket() -> None:
    t0, t1 = pd.Timestamp("2026-01-01 10:00", tz="UTC"), pd.Timestamp("2026-01-01 10:01", tz="UTC")
    counts = pd.DataFrame(
        {
            "bucket": [t0, t0, t0, t1],
            "decision": ["APPROVE", "REVIEW", "BLOCK", "APPROVE"],
            "n": [90, 6, 4, 60],
            "latency_mean_ms": [100.0, 200.0, 300.0, 50.0],
            "latency_p95_ms": [150.0, 250.0, 400.0, 80.0],
        }
    )
    rates = views.decision_rates(counts)
    assert rates.loc[t0].to_dict() == pytest.approx({"APPROVE": 0.9, "REVIEW": 0.06, "BLOCK": 0.04})
    assert rates.loc[t1].to_dict() == {"APPROVE": 1.0, "REVIEW": 0.0, "BLOCK": 0.0}
    flow = views.throughput(counts, 60.0)
    assert flow.loc[t0, "tx_per_s"] == pytest.approx(100 / 60)
    assert flow.loc[t0, "latency_mean_ms"] == pytest.approx((90 * 100 + 6 * 200 + 4 * 300) / 100)
    assert flow.loc[t0, "latency_p95_ms"] == 400.0 and flow.loc[t1, "latency_p95_ms"] == 80.0
    assert views.decision_rates(counts.iloc[0:0]).empty


def test_histogram_fills_empty_bins() -> None:
    hist = views.histogram(pd.DataFrame({"bin": [1, 3, 20], "n": [5, 2, 1]}), bins=20)
    assert len(hist) == 20 and hist["transactions"].sum() == 8
    assert hist["transactions"].iloc[[0, 1, 2, 19]].tolist() == [5, 0, 2, 1]


def test_metrics_text() -> None:
    assert views.metrics_text({"b": 0.123456, "a": 3}) == "a=3, b=0.1235"
    assert views.metrics_text({}) == "" and views.metrics_text(None) == ""


def test_run_key_of_snapshot() -> None:
    assert views.run_key_of_snapshot("s3://fraud-lake/snapshots/manual__2026_run/transactions.parquet") == (
        "manual__2026_run"
    )
    assert views.run_key_of_snapshot(None) is None and views.run_key_of_snapshot("/tmp/x.parquet") is None


@pytest.fixture(scope="module")
def tiny_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, len(FEATURE_NAMES))).astype(np.float32)
    # fraud driven by the amount (feature 0) only
    y = (X[:, 0] + 0.1 * rng.normal(size=400) > 1.0).astype(int)
    return X, y


def _check_reasons(model: object, X: np.ndarray) -> None:
    row = X[np.argmax(X[:, 0])][None, :]
    contributions = views.shap_contributions(model, row)
    assert contributions.shape == (len(FEATURE_NAMES) + 1,)  # + the bias
    # SHAP adds up to the model's margin (log-odds of its probability)
    p = float(model.predict(row)[0])  # type: ignore[attr-defined]
    assert contributions.sum() == pytest.approx(np.log(p / (1 - p)), abs=1e-3)
    reasons = views.reason_codes(contributions, row[0], top=3)
    assert reasons[0].feature == FEATURE_NAMES[0] and reasons[0].direction == "raises"
    assert len(reasons) <= 3
    assert [abs(r.contribution) for r in reasons] == sorted(
        (abs(r.contribution) for r in reasons), reverse=True
    )


def test_reason_codes_of_an_xgboost_model(tiny_data: tuple[np.ndarray, np.ndarray]) -> None:
    import xgboost as xgb

    from fraudops.model_families import XGBoostModel

    X, y = tiny_data
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(X, label=y, feature_names=list(FEATURE_NAMES)),
        num_boost_round=20,
    )
    _check_reasons(XGBoostModel(booster), X)


def test_reason_codes_of_a_catboost_model(tiny_data: tuple[np.ndarray, np.ndarray]) -> None:
    from catboost import CatBoostClassifier

    from fraudops.model_families import CatBoostModel

    X, y = tiny_data
    model = CatBoostClassifier(
        iterations=30, depth=2, verbose=False, thread_count=1, random_seed=1, allow_writing_files=False
    )
    model.fit(pd.DataFrame(X, columns=list(FEATURE_NAMES)), y)
    _check_reasons(CatBoostModel(model, threads=1), X)


def test_feature_vector_follows_the_feature_definition() -> None:
    stored = {name: float(i) for i, name in enumerate(FEATURE_NAMES)}
    assert views.feature_vector(stored).tolist() == [list(map(float, range(len(FEATURE_NAMES))))]
    with pytest.raises(ValueError, match="lack"):
        views.feature_vector({})


# -- wiring ------------------------------------------------------------------------------------------------
def test_console_role_reads_what_it_shows_and_writes_labels_only() -> None:
    grants = console_grants("fraud_console")
    assert 'GRANT INSERT, UPDATE ON fraud_labels TO "fraud_console"' in grants
    assert 'GRANT UPDATE (status) ON fraud_alerts TO "fraud_console"' in grants
    assert not any("transactions_raw" in g or "DELETE" in g or "ALL" in g for g in grants)


def test_console_binds_to_the_stack_host_and_port() -> None:
    settings = load_settings()
    argv = streamlit_argv(settings, "streamlit")
    assert argv[argv.index("--server.address") + 1] == settings.stack.host
    assert argv[argv.index("--server.port") + 1] == str(settings.stack.ports.console) == "8501"
    assert argv[argv.index("--browser.gatherUsageStats") + 1] == "false"
