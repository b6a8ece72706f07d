"""The analyst console in a real browser (Debian's headless Chromium, driven by Playwright) against the
stack's console service, Postgres and MLflow.

The transactions it works on are scored by a real (tiny) XGBoost model registered in MLflow under a
throw-away name, and committed by the scorer's own Postgres store; every row, label, user and model this
module makes is removed at the end. Screenshots go to $FRAUDOPS_CONSOLE_SCREENSHOTS when it is set
(`docs/console` refreshes the README's), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
import pytest
from scorer_support import TEST_WORLD, delete_model, train_tiny_model

from fraudops import fraud_db
from fraudops.connections import console_dsn
from fraudops.console import queries
from fraudops.console.feedback import NotAllowed, submit_label
from fraudops.console.users import User, UserStore
from fraudops.decisions import decide
from fraudops.features import FEATURE_NAMES, build_features, feature_matrix
from fraudops.scoring.store import PostgresStore
from fraudops.simulator import simulate

CHROMIUM = Path(os.environ.get("FRAUDOPS_CHROMIUM", "/usr/bin/chromium"))
# this machine has no network: nothing may reach out for updates, sync or QUIC
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Streamlit reruns the script on each interaction; a page settles well within this on the 2-core machine
UI_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class ConsoleWorld:
    url: str
    dsn: str
    console_dsn: str
    prefix: str
    customer_id: int
    alerts: list[str]
    approved: list[str]
    model_name: str
    model_version: str
    analyst: tuple[str, str]
    viewer: tuple[str, str]
    shots: Path


def _scored_rows(prefix: str, customer_id: int, model: Any, thresholds: Any) -> tuple[pd.DataFrame, ...]:
    """Three alerts and two approvals: real features of simulated transactions, scored by the model,
    re-dated to now under the test's ids and customer."""
    feats = build_features(simulate(TEST_WORLD.model_copy(update={"n_days": 50, "seed": 5})))
    feats = feats.iloc[len(feats) // 2 :].reset_index(drop=True)
    scores = np.asarray(model.predict(feature_matrix(feats)), dtype=float)
    decisions = decide(scores, thresholds)
    alert_rows = np.flatnonzero(decisions != "APPROVE")[:3]
    approve_rows = np.flatnonzero(decisions == "APPROVE")[:2]
    assert len(alert_rows) == 3, "the tiny model raised fewer than 3 alerts on simulated fraud"
    rows = np.concatenate([alert_rows, approve_rows])
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    events = pd.DataFrame(
        {
            "transaction_id": [f"{prefix}{i}" for i in range(len(rows))],
            "tx_datetime": [now - pd.Timedelta(seconds=10 * (len(rows) - i)) for i in range(len(rows))],
            "customer_id": customer_id,
            "terminal_id": feats["terminal_id"].to_numpy()[rows],
            "tx_amount": feats["tx_amount"].to_numpy()[rows],
        }
    )
    scored = events.assign(
        score=scores[rows],
        decision=decisions[rows],
        model_name="",
        model_version="",
        features=feats.loc[rows, list(FEATURE_NAMES)].to_json(orient="records", lines=True).splitlines(),
        latency_ms=[120.0, 250.0, 90.0, 80.0, 60.0],
    )
    return events, scored


@pytest.fixture(scope="module")
def world(running_stack) -> Iterator[ConsoleWorld]:
    import mlflow

    from fraudops.tracking import example_frame, experiment_id, model_signature, use_tracking_uri

    settings, secrets_ = running_stack.settings, running_stack.secrets
    tag = uuid.uuid4().hex[:8]
    prefix, model_name = f"it-console-{tag}-", f"it-console-{tag}"
    dsn = fraud_db.fraud_dsn(settings, secrets_)
    tracking = settings.mlflow_tracking_uri
    use_tracking_uri(tracking)
    model = train_tiny_model(seed=5, rounds=40)
    with mlflow.start_run(experiment_id=experiment_id("it-console")):
        # as training logs it: the console loads only a model whose signature it can check
        example = example_frame(np.zeros((2, len(FEATURE_NAMES))))
        signature = model_signature(example, model.predict(example.to_numpy()))
        info = model.log_to_mlflow(name="model", signature=signature, input_example=None)
    version = str(mlflow.register_model(info.model_uri, model_name).version)
    customer_id = 900_000_000 + int(tag, 16) % 99_999_999
    events, scored = _scored_rows(prefix, customer_id, model, settings.model.thresholds)
    scored = scored.assign(model_name=model_name, model_version=version)
    store = PostgresStore(dsn, checkpoint=f"/checkpoints/{prefix}")
    store.commit(0, events, scored, records=len(events), dead_letters=0, model_version=version)
    store.close()

    users = UserStore(settings.path(settings.console.users_file))
    analyst = (f"it-analyst-{tag}", secrets.token_hex(12))
    viewer = (f"it-viewer-{tag}", secrets.token_hex(12))
    users.set_user(analyst[0], "analyst", analyst[1])
    users.set_user(viewer[0], "viewer", viewer[1])
    shots_env = os.environ.get("FRAUDOPS_CONSOLE_SCREENSHOTS")
    shots = settings.path(shots_env) if shots_env else Path(tempfile.mkdtemp(prefix="console-shots-"))
    shots.mkdir(parents=True, exist_ok=True)
    alerts = scored.loc[scored["decision"] != "APPROVE", "transaction_id"].tolist()
    approved = scored.loc[scored["decision"] == "APPROVE", "transaction_id"].tolist()
    try:
        yield ConsoleWorld(
            f"http://{settings.stack.host}:{settings.stack.ports.console}",
            dsn,
            console_dsn(settings, secrets_),
            prefix,
            customer_id,
            alerts,
            approved,
            model_name,
            version,
            analyst,
            viewer,
            shots,
        )
    finally:
        users.remove_user(analyst[0])
        users.remove_user(viewer[0])
        fraud_db.delete_transactions(dsn, prefix)
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM scorer_batches WHERE checkpoint = %s", (f"/checkpoints/{prefix}",))
        conn.close()
        delete_model(tracking, model_name)
        if not shots_env:
            shutil.rmtree(shots, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: make bootstrap installs Debian's chromium"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as pw:
        # a fresh, empty profile; launch_persistent_context is the API that takes a user data dir
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def _rows(dsn: str, sql: str, params: Any) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def _log_in(page: Any, url: str, name: str, password: str) -> None:
    page.goto(url)
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()
    _settle(page)


def _open(page: Any, name: str, heading: str) -> None:
    page.get_by_test_id("stSidebar").get_by_text(name, exact=True).click()
    _settle(page)
    page.get_by_role("heading", name=heading).first.wait_for()


def _shot(page: Any, world: ConsoleWorld, name: str) -> None:
    time.sleep(1.0)  # charts and tables draw after the script run ends
    page.screenshot(path=str(world.shots / f"{name}.png"), full_page=True)


def _settle(page: Any) -> None:
    """Wait for the script run an interaction started to end (Streamlit's "Running..." widget)."""
    time.sleep(0.5)
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=UI_TIMEOUT_MS)


def _expect_text(page: Any, text: str) -> None:
    page.get_by_text(text).first.wait_for(timeout=UI_TIMEOUT_MS)


def _expect_cell(page: Any, text: str) -> None:
    """Tables draw on a canvas; their accessible copy (hidden) holds the cells."""
    page.get_by_text(text, exact=True).first.wait_for(state="attached", timeout=UI_TIMEOUT_MS)


def test_analyst_searches_labels_an_alert_and_the_label_is_in_postgres(world, browser) -> None:
    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(world.url)
    page.get_by_role("button", name="Log in", exact=True).wait_for()
    _shot(page, world, "login")
    # a wrong password is refused
    _log_in(page, world.url, world.analyst[0], "not-" + world.analyst[1])
    _expect_text(page, "Wrong user name or password")

    _log_in(page, world.url, *world.analyst)
    _expect_text(page, f"{world.analyst[0]} (analyst)")
    # search: the event, the decision, the model version that scored it, its reason codes
    tx = world.alerts[0]
    page.get_by_label("Transaction id", exact=True).fill(tx)
    page.get_by_role("button", name="Search", exact=True).click()
    _settle(page)
    _expect_text(page, f"{world.model_name} v{world.model_version}")
    _expect_text(page, "Reason codes")
    try:
        page.get_by_text("SHAP (log-odds)").first.wait_for(state="attached")
    except Exception:
        raise AssertionError(f"no reason codes; the page says: {page.inner_text('body')[-1500:]}") from None
    assert page.get_by_text("Reason codes unavailable").count() == 0
    _shot(page, world, "search")

    # the alert list, filtered to the test's customer, then a verdict on the newest alert
    _open(page, "Alerts", "Alerts")
    page.get_by_label("Customer id", exact=True).fill(str(world.customer_id))
    page.get_by_role("button", name="Apply filters", exact=True).click()
    _settle(page)
    _expect_text(page, f"{len(world.alerts)} alerts on page 1")
    newest = world.alerts[-1]
    page.get_by_label("Note", exact=True).fill("browser test: card reported stolen")
    page.get_by_role("button", name="Save label", exact=True).click()
    _settle(page)
    _expect_text(page, f"Label saved: {newest} is fraud.")
    _shot(page, world, "alerts")
    # a double submit changes nothing
    page.get_by_role("button", name="Save label", exact=True).click()
    _settle(page)
    _expect_text(page, "Already labelled fraud with this note")

    rows = _rows(
        world.dsn,
        "SELECT l.tx_fraud, l.source, l.labelled_by, l.note, a.status FROM fraud_labels l"
        " JOIN fraud_alerts a USING (transaction_id) WHERE l.transaction_id = %s",
        (newest,),
    )
    assert rows == [(1, "analyst", world.analyst[0], "browser test: card reported stolen", "confirmed_fraud")]

    _open(page, "Labels", "Analyst labels")
    _expect_cell(page, newest)
    _shot(page, world, "labels")
    _open(page, "Monitoring", "Scoring")
    _expect_text(page, "Score distribution")
    _expect_text(page, "Scored by model version")
    page.locator(".vega-embed canvas, .vega-embed svg").nth(3).wait_for()  # the four charts drawn
    _shot(page, world, "monitoring")
    _open(page, "Operations", "Operations")
    _expect_text(page, "Services up")
    _expect_text(page, "Scrape targets")
    _expect_cell(page, "postgres")  # a scrape target's job, from Prometheus
    _shot(page, world, "operations")
    _open(page, "Model", "Model in production")
    _expect_text(page, "History (model_metadata)")
    _shot(page, world, "model")
    page.close()


def test_a_viewer_sees_but_cannot_label(world, browser) -> None:
    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    _log_in(page, world.url, *world.viewer)
    _expect_text(page, f"{world.viewer[0]} (viewer)")
    page.get_by_label("Transaction id", exact=True).fill(world.alerts[1])
    page.get_by_role("button", name="Search", exact=True).click()
    _settle(page)
    _expect_text(page, "Viewers cannot label transactions")
    assert page.get_by_role("button", name="Save label", exact=True).count() == 0
    _shot(page, world, "viewer")
    page.close()
    # and the server refuses a viewer's label whatever the page shows
    with psycopg2.connect(world.console_dsn) as conn:
        with pytest.raises(NotAllowed):
            submit_label(conn, User(world.viewer[0], "viewer"), world.alerts[1], "fraud", "")
    conn.close()
    assert _rows(world.dsn, "SELECT 1 FROM fraud_labels WHERE transaction_id = %s", (world.alerts[1],)) == []


def test_console_role_reads_what_it_shows_and_writes_only_labels(world) -> None:
    conn = psycopg2.connect(world.console_dsn)
    try:
        row = queries.find_transaction(conn, world.approved[0])
        assert row is not None and row["decision"] == "APPROVE" and set(row["features"]) == set(FEATURE_NAMES)
        for forbidden in (
            "SELECT count(*) FROM transactions_raw",
            "DELETE FROM fraud_labels",
            "UPDATE transactions_with_score SET score = 0",
            "CREATE TABLE console_was_here (x int)",
        ):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                with conn.cursor() as cur:
                    cur.execute(forbidden)
            conn.rollback()
    finally:
        conn.close()


def test_analyst_verdicts_win_over_simulated_labels_in_what_retraining_reads(world) -> None:
    tx = world.approved[1]
    simulated = pd.DataFrame(
        {
            "transaction_id": [tx],
            "tx_fraud": [0],
            "tx_fraud_scenario": [0],
            "available_at": [datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)],
        }
    )
    assert fraud_db.write_labels(world.dsn, simulated) == 1
    conn = psycopg2.connect(world.console_dsn)
    try:
        analyst = User(world.analyst[0], "analyst")
        assert submit_label(conn, analyst, tx, "fraud", "chargeback confirmed by phone")
        assert not submit_label(conn, analyst, tx, "fraud", "chargeback confirmed by phone")
        with pytest.raises(LookupError):
            submit_label(conn, analyst, world.prefix + "never-scored", "fraud", "")
    finally:
        conn.close()
    # the delayed feed arriving later leaves the verdict in place
    assert fraud_db.write_labels(world.dsn, simulated) == 0
    # the extract step of the next retraining reads the analyst's label
    now = datetime.now(UTC).replace(tzinfo=None)
    start, end = now - timedelta(hours=1), now + timedelta(minutes=1)
    frame = fraud_db.read_transactions(world.dsn, start, end, labels_known_at=now + timedelta(seconds=5))
    mine = frame.loc[frame["transaction_id"] == tx]
    assert mine["tx_fraud"].tolist() == [1]
    assert _rows(
        world.dsn, "SELECT source, labelled_by FROM fraud_labels WHERE transaction_id = %s", (tx,)
    ) == [("analyst", world.analyst[0])]
