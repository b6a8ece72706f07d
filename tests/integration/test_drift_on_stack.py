"""Drift on the real stack: a champion whose training run logged its reference, scored traffic in Postgres
from a simulator stream whose amounts shifted, the daily check recording PSI in Postgres and MLflow,
triggering a DAG run through Airflow's REST API, and Prometheus seeing the PSI through the platform
exporter."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from scorer_support import TEST_WORLD, delete_model, delete_rows, query, unique

from fraudops.airflow_api import AirflowApi
from fraudops.config.model import XGBoostParams
from fraudops.config.settings import load_settings
from fraudops.decisions import decide
from fraudops.drift import REFERENCE_ARTIFACT, SCORE, check_drift, reference_profile
from fraudops.features import FEATURE_NAMES, build_features, feature_matrix
from fraudops.fraud_db import fraud_dsn
from fraudops.model_families import Dataset, fit_xgboost
from fraudops.simulator import simulate

# a real DAG that is cheap to run: the check triggers it as it would trigger the retraining
TRIGGERED_DAG = "platform_smoke"


@pytest.fixture
def drift_champion(running_stack: Any) -> Any:
    """A throw-away champion trained on a small world, its reference logged by its run as training does."""
    import mlflow

    from fraudops.tracking import experiment_id, use_tracking_uri

    settings = running_stack.settings
    features = build_features(simulate(TEST_WORLD.model_copy(update={"n_days": 50, "seed": 21})))
    day = (features["tx_datetime"] - features["tx_datetime"].min()).dt.days
    train, test = features[(day >= 30) & (day < 42)], features[day >= 42]
    model = fit_xgboost(
        Dataset(feature_matrix(train), train["tx_fraud"].to_numpy()),
        Dataset(feature_matrix(test), test["tx_fraud"].to_numpy()),
        XGBoostParams(n_estimators=20, max_depth=3),
        class_weight="sqrt",
        threads=1,
        seed=2,
        early_stopping_rounds=20,
    )
    name = unique("it-drift")
    use_tracking_uri(settings.mlflow_tracking_uri)
    with mlflow.start_run(experiment_id=experiment_id("it-drift")):
        scored = test.assign(**{SCORE: model.predict(feature_matrix(test))})
        mlflow.log_dict(reference_profile(scored, [*FEATURE_NAMES, SCORE]), REFERENCE_ARTIFACT)
        info = model.log_to_mlflow(name="model", signature=None, input_example=None)
    version = mlflow.register_model(info.model_uri, name).version
    mlflow.MlflowClient().set_registered_model_alias(name, settings.mlflow.champion_alias, version)
    yield name, model
    delete_model(settings.mlflow_tracking_uri, name)


def _write_scored(dsn: str, frame: pd.DataFrame, model: Any, name: str, prefix: str) -> None:
    import psycopg2.extras

    scores = np.clip(model.predict(feature_matrix(frame)), 0, 1)
    decisions = decide(scores, load_settings().model.thresholds)
    features = frame.loc[:, list(FEATURE_NAMES)].to_dict(orient="records")
    rows = [
        (f"{prefix}-{i}", at.to_pydatetime(), int(c), int(t), float(a), float(s), d, name, "1", json.dumps(f))
        for i, at, c, t, a, s, d, f in zip(
            frame["transaction_id"],
            frame["tx_datetime"],
            frame["customer_id"],
            frame["terminal_id"],
            frame["tx_amount"],
            scores,
            decisions,
            features,
            strict=True,
        )
    ]
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO transactions_with_score (transaction_id, tx_datetime, customer_id, terminal_id, "
            "tx_amount, score, decision, model_name, model_version, features) VALUES %s",
            rows,
        )
    conn.close()


def test_a_shifted_stream_triggers_retraining_and_shows_in_prometheus(
    running_stack: Any, drift_champion: Any
) -> None:
    name, model = drift_champion
    secrets = running_stack.secrets
    settings = load_settings(
        mlflow={"model_name": name},
        drift={"retraining_dag_id": TRIGGERED_DAG, "min_rows": 300, "experiment": "it-drift-checks"},
    )
    dsn = fraud_dsn(settings, secrets)
    # the simulator again, later and elsewhere, with every amount tripled
    raw = simulate(TEST_WORLD.model_copy(update={"n_days": 45, "seed": 77}))
    raw["tx_amount"] = raw["tx_amount"] * 3
    features = build_features(raw)
    recent = features[features["tx_datetime"] >= features["tx_datetime"].max() - timedelta(days=3)]
    prefix = unique("it-drift")
    api = AirflowApi(settings, secrets)
    before = api.get(f"/dags/{TRIGGERED_DAG}/dagRuns", limit=1)["total_entries"]
    triggered: list[str] = []
    try:
        _write_scored(dsn, recent, model, name, prefix)
        report = check_drift(
            settings,
            secrets,
            trigger=lambda r: triggered.append(api.trigger(TRIGGERED_DAG, {"drifted": sorted(r.drifted)})),
        )
        assert report.rows >= len(recent)
        assert {"tx_amount", SCORE} <= set(report.drifted), report.summary()
        assert "tx_during_night" not in report.drifted
        # the retraining trigger fired: a real run of the DAG, with the drifted columns in its conf
        assert len(triggered) == 1
        run = api.get(f"/dags/{TRIGGERED_DAG}/dagRuns/{triggered[0]}")
        assert "tx_amount" in run["conf"]["drifted"]
        assert api.get(f"/dags/{TRIGGERED_DAG}/dagRuns", limit=1)["total_entries"] == before + 1
        # recorded in Postgres (what the platform exporter reads) ...
        stored = dict(query(dsn, "SELECT feature, psi FROM drift_reports WHERE model_name = %s", (name,)))
        assert stored == pytest.approx(report.psi)
        # ... and so in Prometheus
        url = f"http://{settings.stack.host}:{settings.stack.ports.prometheus}/api/v1/query"
        promql = 'fraudops_drift_psi{job="platform", feature="tx_amount"}'
        deadline, value = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            result = requests.get(url, params={"query": promql}, timeout=10).json()["data"]["result"]
            value = float(result[0]["value"][1]) if result else None
            if value is not None and value == pytest.approx(report.psi["tx_amount"]):
                break
            time.sleep(2)
        assert value == pytest.approx(report.psi["tx_amount"])
    finally:
        delete_rows(dsn, prefix)
        query(dsn, "DELETE FROM drift_reports WHERE model_name = %s", (name,))
