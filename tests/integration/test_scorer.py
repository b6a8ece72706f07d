"""The streaming scorer on the real stack: Kafka in, Spark job, Postgres and Kafka out, MLflow champion.

One scorer process serves the module (a Spark start costs ~20 s on 2 cores) on scratch topics and a
throw-away registered model; each test streams its own isolated events (unique ids, customers and
terminals). The last test kills that scorer mid-stream and restarts it from its checkpoint.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scorer_support import (
    IsolatedStream,
    ScorerProcess,
    create_topics,
    delete_model,
    delete_rows,
    delete_topics,
    query,
    read_topic,
    register_version,
    scored_ids,
    scorer_args,
    unique,
    wait_scored,
)

from fraudops.features import FEATURE_NAMES, build_features
from fraudops.fraud_db import fraud_dsn
from fraudops.kafka_client import kafka_producer
from fraudops.producer import ProduceStats, label_writer, produce
from fraudops.signals import ModelUpdate, publish_model_update
from fraudops.stack import process
from fraudops.stack.manager import Stack
from hostile_events import hostile_stream


@dataclass
class ScorerEnv:
    settings: object
    dsn: str
    bootstrap: str
    model: str
    topic: str
    predictions: str
    dead_letters: str
    scorer: ScorerProcess
    prefixes: list[str]

    def stream(self, tag: str) -> IsolatedStream:
        stream = IsolatedStream.new(tag)
        self.prefixes.append(stream.prefix)
        return stream

    def produce(self, events, **kwargs) -> ProduceStats:
        stats = produce(events, kafka_producer(self.bootstrap), self.topic, **kwargs)
        assert stats.failed == 0, stats.errors
        return stats


@pytest.fixture(scope="module")
def env(running_stack, tmp_path_factory) -> Iterator[ScorerEnv]:
    settings = running_stack.settings
    dsn = fraud_dsn(settings, running_stack.secrets)
    bootstrap = settings.kafka_bootstrap_servers
    model = unique("it-scorer")
    register_version(settings.mlflow_tracking_uri, model, seed=1, rounds=20, alias="champion")
    topics = [unique("it6-tx"), unique("it6-pred"), unique("it6-dl")]
    create_topics(bootstrap, topics)
    tmp = tmp_path_factory.mktemp("scorer")
    scorer = ScorerProcess(
        scorer_args(model, *topics, checkpoint=tmp / "checkpoint", models_dir=tmp / "models"),
        tmp / "scorer.log",
    )
    environment = ScorerEnv(settings, dsn, bootstrap, model, *topics, scorer, [])
    scorer.start()
    try:
        yield environment
    finally:
        scorer.stop()
        for prefix in environment.prefixes:
            delete_rows(dsn, prefix)
        delete_topics(bootstrap, topics)
        delete_model(settings.mlflow_tracking_uri, model)


def _assert_sinks_agree(env: ScorerEnv, prefix: str, expected: int) -> None:
    """Postgres rows, alerts and Kafka predictions tell the same story, id by id."""
    rows = query(
        env.dsn,
        "SELECT transaction_id, decision, model_version FROM transactions_with_score"
        " WHERE transaction_id LIKE %s",
        (prefix + "-%",),
    )
    stored = {r[0]: (r[1], r[2]) for r in rows}
    alerts = query(
        env.dsn,
        "SELECT transaction_id, decision, model_version FROM fraud_alerts WHERE transaction_id LIKE %s",
        (prefix + "-%",),
    )
    assert len(alerts) == len({a[0] for a in alerts})
    flagged = {i: v for i, v in stored.items() if v[0] != "APPROVE"}
    assert {a[0]: (a[1], a[2]) for a in alerts} == flagged, "every REVIEW/BLOCK has its alert, and only those"
    predictions = [
        p
        for p in read_topic(env.bootstrap, env.predictions, timeout_s=60)
        if p["transaction_id"].startswith(prefix + "-")
    ]
    told: dict[str, set] = {}
    for p in predictions:
        told.setdefault(p["transaction_id"], set()).add((p["decision"], p["model_version"]))
    assert set(told) == set(stored), f"{len(set(stored) - set(told))} scored ids without a prediction"
    disagree = {i: (told[i], stored[i]) for i in stored if told[i] != {stored[i]}}
    assert not disagree, (
        f"{len(disagree)} predictions disagree with Postgres, e.g. {list(disagree.items())[:3]}"
    )
    assert len(stored) == expected


def _assert_exactly_once(env: ScorerEnv, prefix: str, produced: list[str]) -> None:
    got = scored_ids(env.dsn, prefix)
    assert len(got) == len(set(got))
    missing, extra = set(produced) - set(got), set(got) - set(produced)
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} unexpected"
    raw = query(
        env.dsn, "SELECT count(*) FROM transactions_raw WHERE transaction_id LIKE %s", (prefix + "-%",)
    )
    assert raw[0][0] == len(produced)


def test_streaming_features_equal_batch_features(env: ScorerEnv) -> None:
    stream = env.stream("parity")
    # 20 simulated days: the 7-day-delayed terminal windows fill up with labelled history
    events = list(itertools.islice(stream.events(), 12_000))
    stats = env.produce(events, write_labels=label_writer(env.dsn))
    assert stats.labels_written > 0
    assert wait_scored(env.dsn, stream.prefix, len(events), env.scorer, 240) == len(events)

    rows = query(
        env.dsn,
        "SELECT transaction_id, features FROM transactions_with_score WHERE transaction_id LIKE %s",
        (stream.prefix + "-%",),
    )
    streamed = pd.DataFrame([r[1] for r in rows], index=[r[0] for r in rows])
    frame = pd.DataFrame([e.event for e in events]).assign(tx_fraud=[e.tx_fraud for e in events])
    expected = build_features(frame).set_index("transaction_id").loc[streamed.index]
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(streamed[name], expected[name], rtol=1e-9, atol=1e-9, err_msg=name)
    # the check is not vacuous: the delayed terminal windows carry fraud
    assert expected["terminal_risk_30d"].max() > 0 and streamed["terminal_nb_tx_30d"].max() > 0
    assert streamed["terminal_days_since_first_fraud_30d"].max() > 0


def _malformed(i: int, good: dict) -> bytes:
    kind = i % 10
    base = json.loads(json.dumps(good, default=str))
    if kind == 0:
        return b'{"transaction_id": "x' + str(i).encode()
    if kind == 1:
        base.pop("tx_amount")
    elif kind == 2:
        base["customer_id"] = "abc"
    elif kind == 3:
        base["tx_amount"] = -5.0
    elif kind == 4:
        return json.dumps(base).replace(str(base["tx_amount"]), "NaN").encode()
    elif kind == 5:
        base["tx_amount"] = 1e12
    elif kind == 6:
        base["device"] = "mobile"
    elif kind == 7:
        return json.dumps({**base, "transaction_id": "y" * 20}).encode() + b" " * 5000
    elif kind == 8:
        base["tx_datetime"] = 12345
    else:
        return b"\x00\xff not json"
    return json.dumps(base).encode()


def test_malformed_events_go_to_dead_letters_while_good_ones_flow(env: ScorerEnv) -> None:
    from fraudops.schema import event_to_json

    stream = env.stream("bad")
    good = list(itertools.islice(stream.events(), 600))
    producer = kafka_producer(env.bootstrap)
    n_bad = 1_200
    for i in range(n_bad + len(good)):
        if i % 3 == 2 and (i // 3) < len(good):
            event = good[i // 3].event
            producer.produce(env.topic, key=str(event["customer_id"]), value=event_to_json(event))
        else:
            producer.produce(env.topic, value=_malformed(i, good[0].event))
        producer.poll(0)
    rest = good[(n_bad + len(good)) // 3 :]
    for tx in rest:
        producer.produce(env.topic, key=str(tx.event["customer_id"]), value=event_to_json(tx.event))
    assert producer.flush(60) == 0

    assert wait_scored(env.dsn, stream.prefix, len(good), env.scorer, 180) == len(good)
    letters = read_topic(env.bootstrap, env.dead_letters, timeout_s=60, expect=n_bad)
    assert len(letters) >= n_bad
    assert all(d["reason"] and d["source_topic"] == env.topic for d in letters)
    assert len({(d["source_partition"], d["source_offset"]) for d in letters}) >= n_bad
    reasons = " ".join(d["reason"] for d in letters)
    for needle in ("not valid JSON", "missing field", "expected a number", ">= 0", "finite", "<= 1e+06"):
        assert needle in reasons, needle
    assert "unknown field" in reasons and "too large" in reasons
    assert env.scorer.alive()


def test_ten_thousand_hostile_events_in_a_good_stream(env: ScorerEnv) -> None:
    from fraudops.schema import event_to_json

    stream = env.stream("hostile")
    good = list(itertools.islice(stream.events(), 2_000))
    now = datetime.now(UTC).replace(tzinfo=None)
    hostile = list(hostile_stream(random.Random(11), now, 10_000, stream.prefix, stream.id_base + 500_000))
    # conflicting duplicates: ids of good events again with other content; and exact re-deliveries
    conflicting = [dict(tx.event, tx_amount=tx.event["tx_amount"] + 1) for tx in good[100:300]]
    redelivered = [tx.event for tx in good[300:400]]
    producer = kafka_producer(env.bootstrap)
    where: dict[tuple[int, int], str] = {}  # (partition, offset) of each hostile record -> its category

    def track(kind: str):  # noqa: ANN202
        def delivered(err, msg) -> None:  # noqa: ANN001
            assert err is None, err
            where[(msg.partition(), msg.offset())] = kind

        return delivered

    def send(value: bytes | str, key: str | None, kind: str | None) -> None:
        producer.produce(env.topic, key=key, value=value, on_delivery=track(kind) if kind else None)
        producer.poll(0)

    hostile_iter = iter(hostile)
    for tx in good:
        send(event_to_json(tx.event), str(tx.event["customer_id"]), None)
        for _ in range(5):
            kind, payload = next(hostile_iter)
            send(payload, None, kind)
    for kind, payload in hostile_iter:
        send(payload, None, kind)
    assert producer.flush(120) == 0
    for event in conflicting:
        send(event_to_json(event), str(event["customer_id"]), "conflict")
    for event in redelivered:
        send(event_to_json(event), str(event["customer_id"]), "redelivery")
    assert producer.flush(60) == 0

    assert wait_scored(env.dsn, stream.prefix, len(good), env.scorer, 300) >= len(good)
    expected_letters = len(where) - len(redelivered)
    letters = read_topic(env.bootstrap, env.dead_letters, timeout_s=120, expect=expected_letters)
    mine: dict[tuple[int, int], list] = {}
    for d in letters:
        key = (d["source_partition"], d["source_offset"])
        if key in where:
            mine.setdefault(key, []).append(d)
    assert env.scorer.alive(), env.scorer.log_tail()
    scored = set(scored_ids(env.dsn, stream.prefix))
    good_ids = {tx.event["transaction_id"] for tx in good}
    assert good_ids <= scored
    accepted_hostile = scored - good_ids  # valid-looking hostile events (a printable unicode id, say)
    by_kind: dict[str, int] = {}
    for key, kind in where.items():
        if kind == "redelivery":
            assert key not in mine, "an exact re-delivery is a no-op"
            continue
        if key in mine:
            assert len({d["reason"] for d in mine[key]}) == 1 and mine[key][0]["reason"]
            by_kind[kind] = by_kind.get(kind, 0) + 1
    assert by_kind.get("conflict") == len(conflicting)
    assert all(
        "conflicting duplicate" in mine[k][0]["reason"] for k, kind in where.items() if kind == "conflict"
    )
    # every hostile record is accounted for: a dead letter, or (valid after all) one scored row
    hostile_total = sum(1 for kind in where.values() if kind not in ("conflict", "redelivery"))
    assert sum(n for k, n in by_kind.items() if k != "conflict") + len(accepted_hostile) == hostile_total
    assert all(i.startswith(stream.prefix + "-") for i in accepted_hostile)
    # the stored events are the first versions, not the conflicting ones
    amounts = dict(
        query(
            env.dsn,
            "SELECT transaction_id, tx_amount FROM transactions_raw WHERE transaction_id = ANY(%s)",
            ([e["transaction_id"] for e in conflicting],),
        )
    )
    assert all(amounts[tx.event["transaction_id"]] == tx.event["tx_amount"] for tx in good[100:300])
    _assert_sinks_agree(env, stream.prefix, len(good) + len(accepted_hostile))


def _produce_in_background(env: ScorerEnv, events, rate: float) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        result["stats"] = env.produce(events, rate=rate)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_promotion_mid_stream_is_picked_up_without_a_gap(env: ScorerEnv) -> None:
    stream = env.stream("promo")
    events = list(itertools.islice(stream.events(), 5_000))
    before, during = events[:1_000], events[1_000:]
    # the old champion demonstrably serves this stream before the promotion: waiting on a fixed sleep
    # raced the scorer's first micro-batch on a loaded 2-core runner
    env.produce(before, rate=500)
    assert wait_scored(env.dsn, stream.prefix, len(before), env.scorer, 180) == len(before)
    thread, result = _produce_in_background(env, during, rate=250)
    time.sleep(2)
    version = register_version(
        env.settings.mlflow_tracking_uri, env.model, seed=2, rounds=30, alias="champion"
    )
    publish_model_update(env.bootstrap, ModelUpdate.now(env.model, version, "champion", "", "promote"))
    thread.join(120)
    assert result["stats"].acked == len(during)
    assert wait_scored(env.dsn, stream.prefix, len(events), env.scorer, 180) == len(events)
    _assert_exactly_once(env, stream.prefix, [e.event["transaction_id"] for e in events])

    def versions_of(batch: list) -> set[str]:
        ids = [e.event["transaction_id"] for e in batch]
        rows = query(
            env.dsn,
            "SELECT DISTINCT model_version FROM transactions_with_score WHERE transaction_id = ANY(%s)",
            (ids,),
        )
        return {r[0] for r in rows}

    assert versions_of(before) == {"1"}
    assert versions_of(events[-50:]) == {version}
    rows = query(
        env.dsn,
        "SELECT model_version, min(scored_at), max(scored_at) FROM transactions_with_score "
        "WHERE transaction_id LIKE %s GROUP BY model_version",
        (stream.prefix + "-%",),
    )
    span = {r[0]: r for r in rows}
    assert set(span) == {"1", version}, span
    # swapped between micro-batches: every old-version row was scored before the first new-version row
    assert span["1"][2] <= span[version][1]


def test_broker_killed_mid_stream_loses_and_doubles_nothing(env: ScorerEnv) -> None:
    stream = env.stream("broker")
    events = list(itertools.islice(stream.events(), 3_000))
    stack = Stack(env.settings, log=lambda _m: None)
    thread, result = _produce_in_background(env, events, rate=300)
    try:
        time.sleep(3)
        # a crash, not a shutdown: no leadership hand-over, no flushed log
        assert process.stop(stack.layout, "kafka-3", signal.SIGKILL, timeout=10)
        time.sleep(6)
    finally:
        stack.start(["kafka-3"])
    thread.join(180)
    assert result["stats"].acked == len(events)
    wait_scored(env.dsn, stream.prefix, len(events), env.scorer, 240)
    _assert_exactly_once(env, stream.prefix, [e.event["transaction_id"] for e in events])
    _assert_sinks_agree(env, stream.prefix, len(events))
    assert env.scorer.alive()


def test_postgres_restarted_mid_stream_is_retried_not_fatal(env: ScorerEnv) -> None:
    stream = env.stream("pgrestart")
    events = list(itertools.islice(stream.events(), 3_000))
    stack = Stack(env.settings, log=lambda _m: None)
    thread, result = _produce_in_background(env, events, rate=300)
    try:
        deadline = time.monotonic() + 60
        while len(scored_ids(env.dsn, stream.prefix)) < 300 and time.monotonic() < deadline:
            time.sleep(0.3)
        stack.down(["postgres"])
        time.sleep(8)  # micro-batches fail against the closed port meanwhile
    finally:
        stack.start(["postgres"])
    thread.join(180)
    assert result["stats"].acked == len(events)
    assert wait_scored(env.dsn, stream.prefix, len(events), env.scorer, 300) == len(events)
    assert env.scorer.alive(), env.scorer.log_tail()
    _assert_exactly_once(env, stream.prefix, [e.event["transaction_id"] for e in events])
    _assert_sinks_agree(env, stream.prefix, len(events))
    assert "retrying" in env.scorer.log_path.read_text().lower()
    stack.up()  # whatever else lost its database meanwhile is started again (a no-op when all run)


def test_scorer_killed_and_restarted_mid_stream_scores_each_transaction_once(env: ScorerEnv) -> None:
    stream = env.stream("restart")
    events = list(itertools.islice(stream.events(), 4_000))
    thread, _ = _produce_in_background(env, events, rate=400)
    # kill while batches of this stream are being written
    deadline = time.monotonic() + 60
    while len(scored_ids(env.dsn, stream.prefix)) < 500 and time.monotonic() < deadline:
        time.sleep(0.3)
    env.scorer.kill()
    killed_at = len(scored_ids(env.dsn, stream.prefix))
    assert 0 < killed_at < len(events)
    # a promotion lands while the scorer is down: the replayed batch must repeat what Postgres committed
    version = register_version(
        env.settings.mlflow_tracking_uri, env.model, seed=3, rounds=25, alias="champion"
    )
    publish_model_update(env.bootstrap, ModelUpdate.now(env.model, version, "champion", "", "promote"))
    env.scorer.start()
    thread.join(120)
    wait_scored(env.dsn, stream.prefix, len(events), env.scorer, 240)
    _assert_exactly_once(env, stream.prefix, [e.event["transaction_id"] for e in events])
    _assert_sinks_agree(env, stream.prefix, len(events))
    # the restart found its model and state again
    assert "scoring with" in Path(env.scorer.log_path).read_text()
