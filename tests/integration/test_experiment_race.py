"""Creating the training experiment is race-free on the real MLflow server: the DAG's mapped training
tasks start together on a fresh server, and neither may fail because the other created it first."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from datetime import date
from typing import Any

import mlflow
from mlflow import MlflowClient

from fraudops.config.model import SimulatorSettings
from fraudops.features import build_features
from fraudops.registry import MlflowRegistry
from fraudops.simulator import simulate
from fraudops.tracking import experiment_id, use_account, use_tracking_uri

WORLD = SimulatorSettings(n_customers=200, n_terminals=400, n_days=75, start_date=date(2026, 1, 1), seed=5)


def _train_after_barrier(
    barrier: Any,
    settings: Any,
    secrets: dict[str, str],
    features: Any,
    experiment: str,
    model_name: str,
    family: str,
    out: Any,
) -> None:
    """One training process, as a Celery worker runs it: signed in to MLflow as the pipeline (a spawned
    process starts anonymous), released together with its sibling."""
    from fraudops.train import train_model

    use_account(secrets, "pipeline")

    training = settings.training.model_copy(
        update={
            "experiment": experiment,
            "split": settings.training.split.model_copy(
                update={"train_days": 21, "validation_days": 7, "gap_days": 7, "test_days": 7}
            ),
        }
    )
    barrier.wait(60)
    try:
        result = train_model(
            features,
            model_settings=settings.model,
            training=training,
            tracking_uri=settings.mlflow_tracking_uri,
            registry=MlflowRegistry.from_settings(settings, model_name=model_name),
            family=family,
        )
        out.put((family, "ok", result.run_id))
    except Exception as exc:  # reported to the test, which names it
        out.put((family, "failed", repr(exc)))


def test_concurrent_get_or_create_returns_one_experiment(running_stack) -> None:
    use_tracking_uri(running_stack.settings.mlflow_tracking_uri)
    name = f"it-race-{uuid.uuid4().hex[:8]}"
    n = 8
    barrier = threading.Barrier(n)
    ids: list[str] = []
    errors: list[BaseException] = []

    def create() -> None:
        barrier.wait(30)
        try:
            ids.append(experiment_id(name))
        except BaseException as exc:  # collected: a thread's exception would be lost otherwise
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    client = MlflowClient(running_stack.settings.mlflow_tracking_uri)
    try:
        assert not errors, errors
        assert len(ids) == n and len(set(ids)) == 1
        assert client.get_experiment_by_name(name).experiment_id == ids[0]
    finally:
        found = client.get_experiment_by_name(name)
        if found is not None:
            client.delete_experiment(found.experiment_id)


def test_two_trainings_started_together_on_a_fresh_experiment(running_stack) -> None:
    settings = running_stack.settings
    features = build_features(simulate(WORLD))
    experiment = f"it-race-train-{uuid.uuid4().hex[:8]}"
    model_name = f"it-race-model-{uuid.uuid4().hex[:8]}"
    spawn = multiprocessing.get_context("spawn")
    barrier, out = spawn.Barrier(2), spawn.Queue()
    workers = [
        spawn.Process(
            target=_train_after_barrier,
            args=(
                barrier,
                settings,
                dict(running_stack.secrets),
                features,
                experiment,
                model_name,
                family,
                out,
            ),
        )
        for family in ("xgboost", "catboost")
    ]
    for w in workers:
        w.start()
    results = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(60)
    client = MlflowClient(settings.mlflow_tracking_uri)
    try:
        assert sorted(r[1] for r in results) == ["ok", "ok"], results
        found = client.get_experiment_by_name(experiment)
        assert found is not None
        runs = {r[2] for r in results}
        assert {client.get_run(run_id).info.experiment_id for run_id in runs} == {found.experiment_id}
        assert len(client.search_model_versions(f"name = '{model_name}'")) == 2
    finally:
        mlflow.MlflowClient(settings.mlflow_tracking_uri).delete_registered_model(model_name)
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            client.delete_experiment(found.experiment_id)
