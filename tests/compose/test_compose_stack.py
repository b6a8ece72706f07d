"""docker-compose.yaml for real: every image built, every container healthy, and the product's loop run in
the containers. The tests run in file order, as one story: the stack comes up; its topics and logins are as
the spec says; a retraining DAG run on the Celery worker container makes a champion whose artifacts are in the
MinIO container; the scorer container scores a stream and takes a newly promoted version; the data outlives
`docker compose down` and `up`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable
from typing import Any

import boto3
import pytest
import requests
import yaml
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from fraudops import fraud_db, pipeline
from fraudops.airflow_api import AirflowApi
from fraudops.context import Context
from fraudops.demo import DAG_ID, ensure_history
from fraudops.history import next_stream_start
from fraudops.monitoring.prometheus import ConfigFiles, scrape_jobs
from fraudops.stack.airflow_env import FLOWER_USER
from fraudops.stack.process import command_lines
from fraudops.stack.services import venv_bin
from fraudops.topics import layout_mismatches, load_topic_specs
from prometheus_checks import (
    assert_exporters_reach_what_they_watch,
    prometheus_api,
    wait_for,
    wait_until_jobs_up,
)

# state handed from one step of the story to the next
STORY: dict[str, Any] = {}


def _services_of_compose_file(compose_stack) -> set[str]:
    spec = yaml.safe_load((compose_stack.settings.project_root / "docker-compose.yaml").read_text())
    return {name for name, service in spec["services"].items() if "profiles" not in service}


def _produce(compose_stack, count: int) -> set[str]:
    """Send ``count`` live events from the host through the published broker ports; their ids."""
    ctx = compose_stack.ctx
    topic = ctx.settings.scorer.source_topic
    before = _end_offsets(ctx.settings.kafka_bootstrap_servers, topic)
    start = next_stream_start(ctx.settings.simulator, ctx.dsn)
    produced = subprocess.run(
        [
            venv_bin("fraudops"),
            "produce",
            "--rate",
            "200",
            "--limit",
            str(count),
            "--start",
            start.strftime("%Y-%m-%d"),
        ],
        cwd=ctx.settings.project_root,
        capture_output=True,
        text=True,
    )
    assert produced.returncode == 0, produced.stderr[-3000:]
    return _tx_ids_after(ctx.settings.kafka_bootstrap_servers, topic, before)


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compose-test-offsets"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
    finally:
        consumer.close()


def _tx_ids_after(bootstrap: str, topic: str, offsets: dict[int, int]) -> set[str]:
    end = _end_offsets(bootstrap, topic)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "compose-test-reader", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in offsets.items()])
    ids: set[str] = set()
    remaining = sum(end[p] - o for p, o in offsets.items())
    deadline = time.monotonic() + 60
    try:
        while remaining > 0 and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=2):
                if message.error() is None:
                    ids.add(str(json.loads(message.value())["transaction_id"]))
                    remaining -= 1
    finally:
        consumer.close()
    return ids


def _scored(ctx: Context, ids: Iterable[str]) -> dict[str, str]:
    """transaction id -> model version, for those of ``ids`` the scorer stored."""
    with fraud_db.connect(ctx.dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT transaction_id::text, model_version FROM transactions_with_score"
            " WHERE transaction_id::text = ANY(%s)",
            (list(ids),),
        )
        return dict(cur.fetchall())


def _wait_scored(ctx: Context, ids: set[str], timeout: float = 300) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    scored = _scored(ctx, ids)
    while len(scored) < len(ids) and time.monotonic() < deadline:
        time.sleep(3)
        scored = _scored(ctx, ids)
    assert set(scored) == ids, f"{len(ids - set(scored))} of {len(ids)} events not scored in {timeout:.0f} s"
    return scored


def _snapshot(ctx: Context) -> dict[str, Any]:
    """What must outlive the containers: rows, the champion, the artifacts, the Kafka log."""
    with fraud_db.connect(ctx.dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM transactions_raw")
        raw = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM transactions_with_score")
        scored = cur.fetchone()[0]
    champion = ctx.registry.champion()
    return {
        "raw": raw,
        "scored": scored,
        "champion": champion.version if champion else None,
        "artifacts": sorted(_artifact_keys(ctx)),
        "offsets": _end_offsets(ctx.settings.kafka_bootstrap_servers, ctx.settings.scorer.source_topic),
    }


def _artifact_keys(ctx: Context) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=ctx.settings.s3_endpoint_url,
        aws_access_key_id=ctx.secrets["MINIO_ROOT_USER"],
        aws_secret_access_key=ctx.secrets["MINIO_ROOT_PASSWORD"],
        region_name="us-east-1",
    )
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=ctx.settings.minio.buckets.mlflow_artifacts
    ):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


# ------------------------------------------------------------------------------------------------ the story
def test_every_service_is_built_and_healthy(compose_stack) -> None:
    states = {s.service: s for s in compose_stack.compose.states()}
    assert set(states) == _services_of_compose_file(compose_stack)
    assert [f"{s.service} {s.describe()}" for s in states.values() if not s.ready] == []
    images = subprocess.run(
        [
            "docker",
            "ps",
            "--filter",
            f"label=com.docker.compose.project={compose_stack.settings.docker.project}",
            "--format",
            "{{.Image}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(image.startswith("fraudops-") for image in images), images


def test_topics_have_replication_three_and_min_isr_two(compose_stack) -> None:
    settings = compose_stack.settings
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    metadata = admin.list_topics(timeout=15)
    assert len(metadata.brokers) == 3
    specs = load_topic_specs(settings.path(settings.kafka.topics_file))
    assert {s.replication_factor for s in specs} == {3}
    assert layout_mismatches(metadata, specs) == []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs]
    for future in admin.describe_configs(resources).values():
        assert future.result()["min.insync.replicas"].value == "2"


def test_airflow_login_takes_the_admin_and_refuses_a_wrong_password(compose_stack) -> None:
    ctx = compose_stack.ctx
    url = f"{ctx.settings.airflow_url}/auth/token"
    user = ctx.settings.airflow.admin_user
    good = requests.post(
        url, json={"username": user, "password": ctx.secrets["AIRFLOW_ADMIN_PASSWORD"]}, timeout=30
    )
    assert good.status_code in (200, 201) and good.json()["access_token"]
    bad = requests.post(url, json={"username": user, "password": "not-the-password"}, timeout=30)
    assert bad.status_code == 401
    assert requests.get(f"{ctx.settings.airflow_url}/auth/login/", timeout=30).status_code == 200


def test_retraining_runs_on_the_celery_worker_and_crowns_a_champion(compose_stack) -> None:
    ctx = compose_stack.ctx
    ensure_history(ctx)
    api = AirflowApi(ctx.settings, ctx.secrets)
    api.wait_for_dag(DAG_ID)
    api.wait_until_idle(DAG_ID)
    run_id = api.trigger(DAG_ID, {})
    assert api.wait(DAG_ID, run_id, timeout=1200) == "success"
    worker = subprocess.run(
        [
            "docker",
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            f"label=com.docker.compose.project={compose_stack.settings.docker.project}",
            "--filter",
            "label=com.docker.compose.service=airflow-worker",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    hostnames = {ti["hostname"] for ti in api.task_instances(DAG_ID, run_id)}
    assert len(worker) == 1 and hostnames == {worker[0][:12]}, (hostnames, worker)

    champion = ctx.registry.champion()
    assert champion is not None
    # the registry's own answer to "where are this version's files", proxied by the MLflow server to MinIO
    location = ctx.registry.client.get_model_version_download_uri(ctx.model_name, champion.version)
    prefix = location.removeprefix("mlflow-artifacts:/").strip("/") + "/"
    artifacts = [key for key in _artifact_keys(ctx) if key.startswith(prefix)]
    assert prefix + "MLmodel" in artifacts, f"no model at {location} in MinIO: {artifacts}"
    STORY["champion"] = champion.version
    versions = ctx.registry.client.search_model_versions(f"name='{ctx.model_name}'")
    STORY["challenger"] = next(v.version for v in versions if v.version != champion.version)


def test_scorer_container_scores_a_stream_and_takes_a_promoted_version(compose_stack) -> None:
    if "champion" not in STORY:
        pytest.skip("needs the champion of the retraining test")
    ctx, compose = compose_stack.ctx, compose_stack.compose
    compose.up(["spark-scorer"], profiles=["scoring"])
    compose.wait_ready(["spark-scorer"], timeout=600)

    first = _produce(compose_stack, 300)
    assert len(first) == 300
    scored = _wait_scored(ctx, first)
    assert set(scored.values()) == {STORY["champion"]}

    pipeline.promote_version(ctx, STORY["challenger"], reason="compose test")
    deadline = time.monotonic() + 300
    taken = False
    while not taken and time.monotonic() < deadline:
        batch = _produce(compose_stack, 50)
        taken = STORY["challenger"] in set(_wait_scored(ctx, batch).values())
    assert taken, f"the scorer did not take v{STORY['challenger']} within 300 s"
    checkpoints = compose.run(
        "exec", "-T", "spark-scorer", "printenv", "FRAUDOPS_SCORER__CHECKPOINT_DIR", capture=True
    ).stdout.strip()
    assert checkpoints.startswith("s3a://")
    # the scorer holds the object store's keys, but not on its JVM's command line (any local user reads
    # those, the containers' included, in the host's /proc)
    names = ("MINIO_ROOT_PASSWORD", "MINIO_SCORER_SECRET_KEY", "MINIO_MLFLOW_SECRET_KEY")
    keys = [ctx.secrets[k] for k in names]
    exposed = [pid for pid, line in command_lines().items() if any(key in line for key in keys)]
    assert exposed == [], f"MinIO keys on the command line of pids {exposed}"
    STORY["before_restart"] = _snapshot(ctx)


def test_prometheus_scrapes_every_listed_target_and_alertmanager_is_ready(compose_stack) -> None:
    """The compose Prometheus, configured by `fraudops monitor exec prometheus` from the same settings as
    the native one, scrapes every listed target in the containers (the scorer too, once it runs), and
    sends to the Alertmanager container, which is ready."""
    settings = compose_stack.settings
    jobs = scrape_jobs(settings, ConfigFiles(settings.data_dir), FLOWER_USER)
    required = {job.name for job in jobs if not job.optional}
    if "before_restart" in STORY:
        required.add("scorer")  # the scoring test left the scorer container running

    states = wait_until_jobs_up(settings, required, timeout=120)
    assert set(states) == {job.name for job in jobs}
    # each exporter reaches what it watches, in its container (Airflow's StatsD through statsd-exporter)
    assert_exporters_reach_what_they_watch(settings, timeout=60)
    # the platform exporter reads the registry of the MLflow container: the champion the story crowned
    champion = wait_for(
        "the champion's version",
        lambda: prometheus_api(settings, "/api/v1/query", query="fraudops_champion_version")["result"],
        60,
    )
    if "champion" in STORY:
        assert float(champion[0]["value"][1]) >= int(STORY["champion"]), champion
    kafka = prometheus_api(settings, "/api/v1/query", query='up{job="kafka"}')["result"]
    assert len(kafka) == len(settings.stack.ports.kafka_jmx)
    # Prometheus sends alerts to the Alertmanager container, which answers
    alertmanagers = prometheus_api(settings, "/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [a["url"] for a in alertmanagers] == [
        f"http://alertmanager:{settings.stack.ports.alertmanager}/api/v2/alerts"
    ]
    ready = requests.get(
        f"http://{settings.stack.host}:{settings.stack.ports.alertmanager}/-/ready", timeout=10
    )
    assert ready.status_code == 200


def test_data_survives_compose_down_and_up(compose_stack) -> None:
    if "before_restart" not in STORY:
        pytest.skip("needs the scoring test")
    ctx, compose = compose_stack.ctx, compose_stack.compose
    before = STORY["before_restart"]
    compose.down(volumes=False)
    assert compose.states() == []
    compose.up(profiles=["scoring"])
    compose.wait_ready(timeout=900)

    after = _snapshot(ctx)
    assert after["champion"] == STORY["challenger"] == before["champion"]
    assert after["raw"] == before["raw"] and after["scored"] == before["scored"]
    assert set(before["artifacts"]) <= set(after["artifacts"])
    assert after["offsets"] == before["offsets"]
    # the scorer resumes from its checkpoint in MinIO: new events are scored, none is lost
    more = _produce(compose_stack, 100)
    assert set(_wait_scored(ctx, more).values()) == {STORY["challenger"]}
