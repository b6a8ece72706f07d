"""The scorer on the native stack's Spark standalone cluster (spark-master, spark-worker): the real entry
point, its driver in the scorer process and the Kafka reads on an executor of the worker. Every event
produced on a scratch topic of six partitions is scored in Postgres, and the master and the worker both
show the scorer's application with its executor."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator

import pytest
import requests
from scorer_support import (
    IsolatedStream,
    ScorerProcess,
    create_topics,
    delete_model,
    delete_rows,
    delete_topics,
    register_version,
    scored_ids,
    scorer_args,
    unique,
    wait_scored,
)

from fraudops.fraud_db import fraud_dsn
from fraudops.kafka_client import kafka_producer
from fraudops.producer import produce
from fraudops.stack import process

CLUSTER = ("spark-master", "spark-worker")
APPLICATION = re.compile(r"Spark application (\S+) on (\S+)")


@pytest.fixture(scope="module")
def cluster(running_stack) -> Iterator[tuple[str, str]]:
    """The master and the worker, started (and stopped afterwards) when they were not running.
    Yields the master's and the worker's web UI."""
    stack, ports, host = (
        running_stack.stack,
        running_stack.settings.stack.ports,
        running_stack.settings.stack.host,
    )
    started = [name for name in CLUSTER if process.running_pid(stack.layout, name) is None]
    stack.start(list(CLUSTER))
    try:
        yield f"http://{host}:{ports.spark_master_ui}", f"http://{host}:{ports.spark_worker_ui}"
    finally:
        if started:
            stack.down(started)


def _state(ui: str) -> dict:
    response = requests.get(f"{ui}/json/", timeout=5)
    response.raise_for_status()
    return response.json()


def _application(scorer: ScorerProcess, timeout_s: float = 180.0) -> tuple[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = APPLICATION.search(
            scorer.log_path.read_text(errors="replace") if scorer.log_path.exists() else ""
        )
        if match:
            return match.group(1), match.group(2)
        assert scorer.alive(), f"scorer died:\n{scorer.log_tail()}"
        time.sleep(1)
    raise AssertionError(f"the scorer never said where it runs:\n{scorer.log_tail()}")


def test_the_scorer_runs_on_the_cluster(cluster, running_stack, tmp_path, monkeypatch) -> None:
    master_ui, worker_ui = cluster
    settings = running_stack.settings
    dsn = fraud_dsn(settings, running_stack.secrets)
    bootstrap = settings.kafka_bootstrap_servers
    model = unique("it-cluster")
    register_version(
        settings.mlflow_tracking_uri, model, seed=7, rounds=10, alias=settings.mlflow.champion_alias
    )
    topics = [unique("it6-cl-tx"), unique("it6-cl-pred"), unique("it6-cl-dl")]
    create_topics(bootstrap, topics, partitions=6)  # as transactions_stream: six read tasks a micro-batch
    stream = IsolatedStream.new("cl")
    # the scorer's default, spelled out: the test does not depend on the shell's FRAUDOPS_SPARK__MASTER
    monkeypatch.setenv("FRAUDOPS_SPARK__MASTER", settings.native_spark_master_url)
    scorer = ScorerProcess(
        scorer_args(model, *topics, checkpoint=tmp_path / "checkpoint", models_dir=tmp_path / "models"),
        tmp_path / "scorer.log",
    )
    try:
        events = list(itertools.islice(stream.events(), 400))
        stats = produce(events, kafka_producer(bootstrap), topics[0])
        assert stats.failed == 0, stats.errors
        scorer.start()
        app_id, master = _application(scorer)
        assert master == settings.native_spark_master_url

        expected = {tx.event["transaction_id"] for tx in events}
        assert wait_scored(dsn, stream.prefix, len(expected), scorer, 240) == len(expected), scorer.log_tail()
        assert set(scored_ids(dsn, stream.prefix)) == expected

        # the master granted the scorer executor slots, and the worker runs its executor
        apps = {a["id"]: a for a in _state(master_ui)["activeapps"]}
        assert app_id in apps, f"{app_id} not among the master's applications {sorted(apps)}"
        assert apps[app_id]["name"] == "score_transactions" and apps[app_id]["state"] == "RUNNING"
        assert 0 < apps[app_id]["cores"] <= settings.spark.cores_max
        executors = [e for e in _state(worker_ui)["executors"] if e["appid"] == app_id]
        assert executors and all(e["memory"] > 0 for e in executors), _state(worker_ui)["executors"]
    finally:
        scorer.stop()
        delete_rows(dsn, stream.prefix)
        delete_topics(bootstrap, topics)
        delete_model(settings.mlflow_tracking_uri, model)
    # a graceful stop ends the application, and frees its slots for the next scorer
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and app_id in {a["id"] for a in _state(master_ui)["activeapps"]}:
        time.sleep(1)
    finished = {a["id"]: a["state"] for a in _state(master_ui)["completedapps"]}
    assert finished.get(app_id) == "FINISHED", finished
