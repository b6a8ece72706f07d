"""The fraud_retraining DAG on the real stack, triggered through Airflow's REST API like a user would.

The tests run in file order: the first run makes sure a champion exists, the later ones check that worse
models and bad data never replace it, and that a worker killed mid-training is survived.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pandas as pd
import pytest

from fraudops import fraud_db, pipeline
from fraudops.airflow_api import AirflowApi
from fraudops.config.model import SimulatorSettings
from fraudops.context import Context
from fraudops.history import load_simulated_history, world_ending_today
from fraudops.signals import read_model_updates
from fraudops.simulator import simulate
from fraudops.stack import process
from fraudops.tracking import use_tracking_uri

DAG_ID = "fraud_retraining"
# a small world keeps each run around a minute and a half on two cores
WORLD = SimulatorSettings(n_customers=1000, n_terminals=2000, n_days=170, seed=11)


@pytest.fixture(scope="module")
def ctx(running_stack) -> Iterator[Context]:
    ctx = Context.of(running_stack.settings, running_stack.secrets)
    use_tracking_uri(ctx.settings.mlflow_tracking_uri)
    # the DAG reads the fraud database (as the pipeline's role, ctx.dsn): give it history up to today if it
    # has none, loaded as the producer's role, and take it away after as the owner
    with fraud_db.connect(ctx.dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), now() FROM transactions_raw WHERE tx_datetime > now() - interval '2 days'"
        )
        recent, loaded_from = cur.fetchone()
    if recent < 1000:
        load_simulated_history(world_ending_today(WORLD, WORLD.n_days), ctx.producer_dsn)
    yield ctx
    if recent < 1000:
        owner = fraud_db.fraud_dsn(ctx.settings, ctx.secrets)
        fraud_db.delete_transactions(owner, f"{WORLD.seed}-", added_since=loaded_from)


@pytest.fixture(scope="module")
def api(ctx) -> AirflowApi:
    api = AirflowApi(ctx.settings, ctx.secrets)
    api.wait_for_dag(DAG_ID)
    # a scheduled run may start when the DAG is unpaused near its 02:00 trigger: let it finish first
    api.wait_until_idle(DAG_ID)
    return api


def _run(api: AirflowApi, conf: dict | None = None, timeout: float = 900) -> tuple[str, str]:
    run_id = api.trigger(DAG_ID, conf or {})
    return run_id, api.wait(DAG_ID, run_id, timeout=timeout)


def _champion(ctx) -> str | None:
    version = ctx.registry.champion()
    return version.version if version else None


def _versions_of(ctx, run_id: str) -> dict[str, list[str]]:
    key = pipeline.run_key_of(run_id)
    found: dict[str, list[str]] = {}
    for v in ctx.registry.find({pipeline.RUN_KEY_TAG: key}):
        found.setdefault(v.tags["family"], []).append(v.version)
    return found


def _metadata(ctx, versions: list[str]) -> list[tuple]:
    with fraud_db.connect(ctx.dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT model_version, event, decision, reason, metrics FROM model_metadata "
            "WHERE model_name = %s AND model_version = ANY(%s) ORDER BY id",
            (ctx.model_name, versions),
        )
        return cur.fetchall()


def _states(api: AirflowApi, run_id: str) -> dict[tuple[str, int], dict]:
    return {(ti["task_id"], ti["map_index"]): ti for ti in api.task_instances(DAG_ID, run_id)}


def test_a_run_trains_each_family_registers_and_sets_a_champion(ctx, api, running_stack) -> None:
    run_id, state = _run(api)
    assert state == "success"

    versions = _versions_of(ctx, run_id)
    assert sorted(versions) == sorted(ctx.settings.pipeline.families)
    assert all(len(v) == 1 for v in versions.values()), versions
    all_versions = [v for vs in versions.values() for v in vs]

    # every training logged its model to MinIO through the MLflow server
    for version in all_versions:
        run = ctx.registry.client.get_run(ctx.registry.get(version).run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        assert "auc_roc" in run.data.metrics

    decision = api.xcom(DAG_ID, run_id, "evaluate")
    promotion = api.xcom(DAG_ID, run_id, "promote")
    champion = _champion(ctx)
    assert champion is not None
    if decision["champion_version"] is None:  # no champion yet: the run crowns its best candidate
        assert promotion["promoted"] and champion == promotion["version"] and champion in all_versions
    else:  # a champion existed (an earlier run): the decision was applied as made
        assert champion == (promotion["version"] if promotion["promoted"] else decision["champion_version"])

    rows = _metadata(ctx, all_versions)
    assert {r[1] for r in rows} >= {"evaluation"}
    assert any(r[1] in ("promotion", "rejection") and r[3] for r in rows), rows
    evaluation = next(r for r in rows if r[1] == "evaluation")
    assert "average_precision" in evaluation[4]

    if promotion["promoted"]:
        updates = read_model_updates(ctx.settings.kafka_bootstrap_servers, ctx.model_name)
        updates = [u for u in updates if u.version == promotion["version"]]
        assert updates and updates[-1].alias == "champion"

    # the Airflow UI links training to its MLflow run
    link = api.links(DAG_ID, run_id, "train", map_index=0)["MLflow run"]
    assert link and link.startswith(ctx.settings.mlflow_tracking_uri) and "/runs/" in link


def test_a_worse_configuration_is_not_promoted(ctx, api) -> None:
    champion = _champion(ctx)
    assert champion, "the previous test leaves a champion"
    worse = {
        "xgboost": {"n_estimators": 2, "max_depth": 1, "learning_rate": 0.01},
        "catboost": {"iterations": 2, "depth": 1, "learning_rate": 0.01},
    }
    run_id, state = _run(api, {"model_overrides": worse})
    assert state == "success"
    assert _champion(ctx) == champion
    promotion = api.xcom(DAG_ID, run_id, "promote")
    assert promotion["promoted"] is False
    assert _states(api, run_id)[("signal", -1)]["state"] == "skipped"
    versions = [v for vs in _versions_of(ctx, run_id).values() for v in vs]
    assert any(r[1] == "rejection" for r in _metadata(ctx, versions))


def test_a_corrupted_snapshot_stops_the_run_before_training(ctx, api) -> None:
    champion = _champion(ctx)
    today = date.today()
    frame = simulate(WORLD.model_copy(update={"n_days": 30, "start_date": today - timedelta(days=29)}))
    frame = pd.concat([frame, frame.head(20)], ignore_index=True)  # duplicated ids
    frame.loc[frame.index[:10], "tx_amount"] = float("nan")  # null amounts
    frame["tx_fraud"] = (frame.index % 2).astype("int8")  # 50 % fraud
    uri = f"s3://{ctx.settings.minio.buckets.lake}/it/corrupted-{uuid.uuid4().hex[:8]}.parquet"
    ctx.lake.write(frame, uri)

    run_id, state = _run(api, {"snapshot_uri": uri})
    assert state == "failed"
    states = _states(api, run_id)
    assert states[("validate", -1)]["state"] == "failed"
    assert states[("validate", -1)]["try_number"] == 1, "bad data is not retried"
    assert all(
        ti["state"] in ("upstream_failed", None)
        for (task, _), ti in states.items()
        if task in ("build_features", "train", "evaluate", "promote", "signal")
    )
    assert _versions_of(ctx, run_id) == {}
    assert _champion(ctx) == champion

    # the validation result is in MLflow, Data Docs included
    import mlflow

    runs = mlflow.search_runs(
        experiment_names=[pipeline.VALIDATION_EXPERIMENT],
        output_format="list",
        filter_string=f"tags.`{pipeline.RUN_KEY_TAG}` = '{pipeline.run_key_of(run_id)}'",
    )
    assert runs and runs[0].data.tags["validation.success"] == "False"
    artifacts = [a.path for a in ctx.registry.client.list_artifacts(runs[0].info.run_id, "data_docs")]
    assert "data_docs/index.html" in artifacts
    result = mlflow.artifacts.load_dict(f"runs:/{runs[0].info.run_id}/validation/result.json")
    failures = result["failures"]
    assert any("transaction_id" in f for f in failures) and any("tx_amount" in f for f in failures)
    assert any("tx_fraud" in f for f in failures)


def test_force_from_a_user_without_op_or_admin_fails_before_extracting(ctx, api, running_stack) -> None:
    """A person with Airflow's User role may trigger the DAG, but not with force: the run fails in its
    first task, the champion stays, and nothing is registered."""
    import requests

    from fraudops.stack.airflow_init import airflow_command
    from fraudops.stack.services import venv_bin

    settings = ctx.settings
    airflow = airflow_command(settings, ctx.secrets, venv_bin("airflow"))
    user, password = f"user-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    # fmt: off
    airflow("users", "create", "--username", user, "--password", password, "--role", "User",
            "--email", f"{user}@example.com", "--firstname", "Plain", "--lastname", "User")
    # fmt: on
    champion = _champion(ctx)
    try:
        token = requests.post(
            f"{settings.airflow_url}/auth/token", json={"username": user, "password": password}, timeout=10
        )
        token.raise_for_status()
        response = requests.post(
            f"{settings.airflow_url}/api/v2/dags/{DAG_ID}/dagRuns",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            json={"logical_date": None, "conf": {"force": True}},
            timeout=10,
        )
        assert response.status_code == 200, response.text  # the User role may trigger
        run_id = response.json()["dag_run_id"]
        assert api.wait(DAG_ID, run_id, timeout=600) == "failed"
        states = _states(api, run_id)
        assert states[("extract", -1)]["state"] == "failed"
        assert states[("extract", -1)]["try_number"] == 1, "a refusal is not retried"
        log = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/extract/logs/1")
        assert "force may only be set by a person with one of the roles Admin, Op" in str(log["content"])
        assert _versions_of(ctx, run_id) == {}
        assert _champion(ctx) == champion
    finally:
        airflow("users", "delete", "--username", user)


def test_a_worker_killed_during_training_is_survived(ctx, api, running_stack) -> None:
    stack = running_stack.stack
    run_id = api.trigger(DAG_ID, {"families": ["catboost", "xgboost"]})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        states = _states(api, run_id)
        if any(task == "train" and ti["state"] == "running" for (task, _), ti in states.items()):
            break
        time.sleep(0.5)
    else:
        raise AssertionError("training never started")
    # a crash, not a shutdown: the worker gets no chance to finish or hand back its task
    assert process.stop(stack.layout, "airflow-worker", signal.SIGKILL, timeout=10)
    stack.start(["airflow-worker"])

    assert api.wait(DAG_ID, run_id, timeout=900) == "success"
    trains = [ti for (task, _), ti in _states(api, run_id).items() if task == "train"]
    assert any(ti["try_number"] >= 2 for ti in trains), "the killed training was not retried"
    versions = _versions_of(ctx, run_id)
    assert sorted(versions) == ["catboost", "xgboost"]
    assert all(len(v) == 1 for v in versions.values()), f"duplicate versions after the retry: {versions}"
