"""The analyst console's pages (Streamlit script: ``fraudops console serve`` runs it).

Thin on purpose: every read and write is a function of :mod:`fraudops.console.queries`, every shaping one
of :mod:`fraudops.console.views`, and who may label is decided by :mod:`fraudops.console.feedback`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from fraudops.console import operations, queries, views
from fraudops.console.feedback import NotAllowed, submit_label
from fraudops.console.users import User, UserStore

PAGES = ("Search", "Alerts", "Monitoring", "Operations", "Model", "Labels")
WINDOWS = {"last hour": timedelta(hours=1), "last day": timedelta(days=1), "last week": timedelta(days=7)}
BUCKETS = {"last hour": ("minute", 60.0), "last day": ("hour", 3600.0), "last week": ("hour", 3600.0)}
DAG_ID = "fraud_retraining"


# -- resources: loaded once per server process -----------------------------------------------------------
@st.cache_resource
def _context() -> dict[str, Any]:
    from psycopg2.pool import ThreadedConnectionPool

    from fraudops.config.settings import load_settings
    from fraudops.connections import console_dsn
    from fraudops.secrets import load_secrets
    from fraudops.tracking import use_account

    settings = load_settings()
    secrets = load_secrets(settings.env_dir)
    # the console shows the champion and its runs: MLflow's read-only account
    use_account(secrets, "reader")
    return {
        "settings": settings,
        "users": UserStore(settings.path(settings.console.users_file)),
        "pool": ThreadedConnectionPool(1, 8, console_dsn(settings, secrets), connect_timeout=5),
    }


@contextmanager
def _db() -> Iterator[Any]:
    pool = _context()["pool"]
    conn = pool.getconn()
    try:
        yield conn
    except Exception:
        conn.rollback()
        raise
    finally:
        pool.putconn(conn)


@st.cache_resource(max_entries=4, show_spinner="loading the model version from MLflow")
def _model(name: str, version: str) -> Any:
    import mlflow

    from fraudops.registry import load_model

    uri = _context()["settings"].mlflow_tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return load_model(f"models:/{name}/{version}")


@st.cache_data(ttl=60, show_spinner=False)
def _experiment_of(run_id: str) -> str | None:
    from mlflow import MlflowClient

    uri = _context()["settings"].mlflow_tracking_uri
    try:
        return MlflowClient(uri).get_run(run_id).info.experiment_id
    except Exception:  # a run deleted from MLflow still has its audit row
        return None


@st.cache_data(ttl=15, show_spinner=False)
def _champion() -> dict[str, Any] | None:
    from mlflow import MlflowClient

    from fraudops.registry import version_by_alias

    settings = _context()["settings"]
    client = MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    try:
        mv = version_by_alias(client, settings.mlflow.model_name, settings.mlflow.champion_alias)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    if mv is None:
        return None
    return {
        "version": str(mv.version),
        "run_id": mv.run_id,
        "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
        "tags": dict(mv.tags or {}),
    }


# -- login ---------------------------------------------------------------------------------------------------
def _login() -> User | None:
    user = st.session_state.get("user")
    if user is not None:
        return user
    st.title("Fraud analyst console")
    with st.form("login"):
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        found = _context()["users"].authenticate(name.strip(), password)
        if found is None:
            time.sleep(0.5)  # a guess costs time
            st.error("Wrong user name or password.")
            return None
        st.session_state["user"] = found
        st.rerun()
    return None


# -- pages ---------------------------------------------------------------------------------------------------
def _label_form(user: User, transaction_id: str, key: str) -> None:
    if not user.can_label:
        st.info("Viewers cannot label transactions: ask an analyst.")
        return
    with st.form(f"label-{key}"):
        verdict = st.radio("Verdict", list(queries.VERDICTS), horizontal=True, key=f"verdict-{key}")
        note = st.text_area("Note", max_chars=queries.MAX_NOTE, key=f"note-{key}")
        saved = st.form_submit_button("Save label")
    if saved:
        try:
            with _db() as conn:
                changed = submit_label(conn, user, transaction_id, verdict, note)
        except (NotAllowed, ValueError, LookupError) as exc:
            st.error(str(exc))
            return
        st.success(
            f"Label saved: {transaction_id} is {verdict}."
            if changed
            else f"Already labelled {verdict} with this note: nothing changed."
        )


def _reasons(row: dict[str, Any]) -> None:
    features = row.get("features") or {}
    try:
        model = _model(row["model_name"], str(row["model_version"]))
        # the features of the version that scored it, which may predate today's feature list
        names = tuple(model.feature_names)
        x = views.feature_vector(features, names)
        contributions = views.shap_contributions(model, x)
    except Exception as exc:
        st.warning(f"Reason codes unavailable: {type(exc).__name__}: {exc}"[:300])
        return
    reasons = views.reason_codes(contributions, x[0], names)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "feature": r.feature,
                    "value": r.value,
                    "SHAP (log-odds)": round(r.contribution, 4),
                    "effect": r.direction,
                }
                for r in reasons
            ]
        ),
        hide_index=True,
    )


def page_search(user: User) -> None:
    st.header("Search a transaction")
    with st.form("search"):
        transaction_id = st.text_input("Transaction id", value=st.session_state.get("search_id", ""))
        found = st.form_submit_button("Search")
    if found:
        st.session_state["search_id"] = transaction_id.strip()
    tx_id = st.session_state.get("search_id", "")
    if not tx_id:
        return
    with _db() as conn:
        row = queries.find_transaction(conn, tx_id)
    if row is None:
        st.warning(f"No scored transaction {tx_id!r}.")
        return
    cols = st.columns(4)
    cols[0].metric("Decision", row["decision"])
    cols[1].metric("Score", f"{row['score']:.4f}")
    cols[2].metric("Model version", f"{row['model_name']} v{row['model_version']}")
    cols[3].metric("Latency", f"{row['latency_ms']:.0f} ms" if pd.notna(row["latency_ms"]) else "-")
    st.caption(f"Event time {row['tx_datetime']} UTC; scored at {row['scored_at']}")
    left, right = st.columns(2)
    with left:
        st.subheader("Event")
        event = {
            k: row[k] for k in ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")
        }
        st.dataframe(pd.DataFrame({"value": pd.Series(event).astype(str)}))
        st.subheader("Features")
        st.dataframe(pd.DataFrame({"value": pd.Series(row.get("features") or {}, dtype=float)}))
    with right:
        st.subheader("Reason codes")
        _reasons(row)
        st.subheader("Label")
        if pd.notna(row.get("label")):
            verdict = "fraud" if int(row["label"]) == 1 else "genuine"
            by = f" by {row['labelled_by']}" if row.get("labelled_by") else ""
            note = row.get("label_note") or ""
            st.write(f"**{verdict}** ({row['label_source']}{by}, {row['labelled_at']}) {note}")
        else:
            st.write("No label yet.")
        if pd.notna(row.get("alert_id")):
            st.write(f"Alert #{int(row['alert_id'])}: {row['alert_status']}")
        _label_form(user, tx_id, "search")


def _optional_int(text: str, name: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"{name} is a whole number")
    return int(text)


def page_alerts(user: User) -> None:
    st.header("Alerts")
    settings = _context()["settings"]
    with st.form("alert-filters"):
        c = st.columns(4)
        decisions = c[0].multiselect(
            "Decision", queries.ALERT_DECISIONS, default=list(queries.ALERT_DECISIONS)
        )
        since = c[1].date_input("From (event day)", value=None)
        until = c[2].date_input("Until (event day, included)", value=None)
        status = c[3].multiselect("Status", ["open", "confirmed_fraud", "false_positive", "closed"])
        c = st.columns(4)
        min_amount = c[0].number_input("Min amount", min_value=0.0, value=None)
        max_amount = c[1].number_input("Max amount", min_value=0.0, value=None)
        customer = c[2].text_input("Customer id")
        terminal = c[3].text_input("Terminal id")
        st.form_submit_button("Apply filters")
    try:
        flt = queries.AlertFilter(
            decisions=tuple(decisions) or queries.ALERT_DECISIONS,
            since=datetime.combine(since, datetime.min.time()) if isinstance(since, date) else None,
            until=datetime.combine(until, datetime.min.time()) + timedelta(days=1)
            if isinstance(until, date)
            else None,
            min_amount=min_amount,
            max_amount=max_amount,
            customer_id=_optional_int(customer, "customer id"),
            terminal_id=_optional_int(terminal, "terminal id"),
            statuses=tuple(status),
        )
    except ValueError as exc:
        st.error(str(exc))
        return
    page_size = settings.console.page_size
    page = st.number_input("Page", min_value=1, value=1, step=1) - 1
    started = time.perf_counter()
    with _db() as conn:
        alerts = queries.list_alerts(conn, flt, int(page), page_size)
    st.caption(f"{len(alerts)} alerts on page {page + 1} ({(time.perf_counter() - started) * 1000:.0f} ms)")
    st.dataframe(alerts, hide_index=True, use_container_width=True)
    if alerts.empty:
        return
    st.subheader("Work an alert")
    chosen = st.selectbox("Transaction", alerts["transaction_id"].tolist(), key="alert-choice")
    if chosen:
        _label_form(user, chosen, "alert")


def page_monitoring(user: User) -> None:
    st.header("Scoring")
    window = st.radio("Window", list(WINDOWS), horizontal=True, index=1)
    since = datetime.now(UTC) - WINDOWS[window]
    bucket, seconds = BUCKETS[window]
    with _db() as conn:
        counts = queries.decision_counts(conn, since, bucket)
        bins = queries.score_histogram(conn, since)
        versions = queries.scored_by_version(conn, since)
    if counts.empty:
        st.info(f"Nothing scored in the {window}.")
        return
    counts["bucket"] = pd.to_datetime(counts["bucket"], utc=True)
    total = int(counts["n"].sum())
    c = st.columns(3)
    c[0].metric("Scored", f"{total:,}")
    c[1].metric("Alerts (REVIEW + BLOCK)", f"{int(counts.loc[counts['decision'] != 'APPROVE', 'n'].sum()):,}")
    c[2].metric("Latency p95 (max per bucket)", f"{float(counts['latency_p95_ms'].max()):.0f} ms")
    st.subheader("Score distribution")
    st.bar_chart(views.histogram(bins))
    st.subheader("Decision rates")
    st.line_chart(views.decision_rates(counts))
    flow = views.throughput(counts, seconds)
    left, right = st.columns(2)
    left.subheader("Throughput (tx/s)")
    left.line_chart(flow[["tx_per_s"]])
    right.subheader("Latency (ms, event to score)")
    right.line_chart(flow[["latency_mean_ms", "latency_p95_ms"]])
    st.subheader("Scored by model version")
    st.dataframe(versions, hide_index=True)


def page_operations(user: User) -> None:
    st.header("Operations")
    prometheus = operations.Prometheus(operations.prometheus_url(_context()["settings"]))
    st.caption(f"From Prometheus at {prometheus.url} (scraped every few seconds; alert rules as paged)")
    try:
        targets, alerts = prometheus.targets(), prometheus.alerts()
        end = datetime.now(UTC)
        series = {
            title: prometheus.series(title, query, end - timedelta(hours=1), end, 15)
            for title, query in operations.PANELS.items()
        }
    except operations.PrometheusError as exc:
        st.warning(f"Operational panels unavailable: {exc}")
        return
    up = int((targets["health"] == "up").sum())
    firing = int((alerts["state"] == "firing").sum())
    c = st.columns(4)
    c[0].metric("Services up", f"{up} / {len(targets)}")
    c[1].metric("Alerts firing", firing)
    now = {title: operations.latest(frame) for title, frame in series.items()}
    scored, lag = now["Scored (tx/s)"], now["Consumer lag (records)"]
    c[2].metric("Scored now (tx/s)", "-" if scored is None else f"{scored:,.1f}")
    c[3].metric("Consumer lag", "-" if lag is None else f"{lag:,.0f}")
    st.subheader("Alerts")
    if alerts.empty:
        st.success("No alert is firing or pending.")
    else:
        st.dataframe(alerts, hide_index=True)
    st.subheader("Last hour")
    columns = st.columns(2)
    for i, (title, frame) in enumerate(series.items()):
        box = columns[i % 2]
        box.markdown(f"**{title}**")
        if frame.empty:
            box.caption("no data in the last hour")
        else:
            box.line_chart(frame)
    st.subheader("Scrape targets")
    st.dataframe(targets, hide_index=True)


def page_model(user: User) -> None:
    settings = _context()["settings"]
    st.header(f"Model in production: {settings.mlflow.model_name}")
    champion = _champion()
    tracking = settings.mlflow_tracking_uri
    if champion is None or "error" in champion:
        st.warning(
            f"No @{settings.mlflow.champion_alias} in the registry. {(champion or {}).get('error', '')}"
        )
    else:
        experiment = _experiment_of(champion["run_id"]) if champion["run_id"] else None
        st.metric(f"@{settings.mlflow.champion_alias}", f"version {champion['version']}")
        if experiment:
            url = views.mlflow_run_url(tracking, experiment, champion["run_id"])
            st.markdown(f"MLflow run: [{champion['run_id']}]({url})")
        run_key = champion["tags"].get("pipeline.run_key")
        if run_key:
            runs = f"{settings.airflow_url}/dags/{DAG_ID}/runs"
            st.markdown(f"Trained in pipeline run `{run_key}`: [{DAG_ID} runs in Airflow]({runs})")
    st.subheader("History (model_metadata)")
    with _db() as conn:
        history = queries.model_history(conn, settings.mlflow.model_name)
    if history.empty:
        st.info("No evaluation or promotion recorded yet.")
        return
    history["mlflow_run"] = [
        views.mlflow_run_url(tracking, exp, run) if run and (exp := _experiment_of(run)) else None
        for run in history["run_id"]
    ]
    history["metrics"] = history["metrics"].map(views.metrics_text)
    # the snapshot's folder is the Airflow run's key (pipeline.lake_uri)
    history["airflow_run_key"] = [views.run_key_of_snapshot(s) for s in history["data_snapshot"]]
    history["airflow_run"] = [
        f"{settings.airflow_url}/dags/{DAG_ID}/runs" if key else None for key in history["airflow_run_key"]
    ]
    st.dataframe(
        history,
        hide_index=True,
        use_container_width=True,
        column_config={
            "mlflow_run": st.column_config.LinkColumn("MLflow run"),
            "airflow_run": st.column_config.LinkColumn("Airflow runs"),
        },
    )


def page_labels(user: User) -> None:
    st.header("Analyst labels")
    st.caption(
        "Verdicts land in fraud_labels (source analyst) and win over simulated labels in the next retraining."
    )
    with _db() as conn:
        st.dataframe(queries.recent_labels(conn, 200), hide_index=True, use_container_width=True)


def main() -> None:
    st.set_page_config(page_title="fraudops console", layout="wide")
    user = _login()
    if user is None:
        return
    st.sidebar.markdown(f"**{user.name}** ({user.role})")
    if st.sidebar.button("Log out"):
        st.session_state.clear()
        st.rerun()
    page = st.sidebar.radio("Page", PAGES)
    {
        "Search": page_search,
        "Alerts": page_alerts,
        "Monitoring": page_monitoring,
        "Operations": page_operations,
        "Model": page_model,
        "Labels": page_labels,
    }[page](user)


if __name__ == "__main__":  # Streamlit runs the script as __main__
    main()
