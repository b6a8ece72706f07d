"""Kafka: topic layout from the spec, durable produce/consume, and survival of one broker's death."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from fraudops.topics import layout_mismatches, load_topic_specs


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 60000,
        }
    )


def _produce(producer: Producer, topic: str, values: list[str], acked: list[str]) -> None:
    def on_delivery(err, msg) -> None:
        if err is None:
            acked.append(msg.value().decode())

    for value in values:
        producer.produce(topic, key=value.split("-")[0], value=value, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages still in flight after 60 s"


def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"it-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                seen.append(msg.value().decode())
    finally:
        consumer.close()
    return seen


@pytest.fixture
def scratch_topic(running_stack):
    bootstrap = running_stack.settings.kafka_bootstrap_servers
    name = f"it-{uuid.uuid4().hex[:8]}"
    admin = _admin(bootstrap)
    admin.create_topics([NewTopic(name, 3, 3, config={"min.insync.replicas": "2"})])[name].result()
    yield name
    admin.delete_topics([name])[name].result()


def test_spec_topics_exist_with_replication_three_and_full_isr(running_stack) -> None:
    settings = running_stack.settings
    specs = load_topic_specs(settings.path(settings.kafka.topics_file))
    assert {s.name for s in specs} >= {
        "transactions_stream",
        "fraud_predictions",
        "dead_letters",
        "model_updates",
    }
    assert {s.replication_factor for s in specs} == {3}
    metadata = _admin(settings.kafka_bootstrap_servers).list_topics(timeout=10)
    assert layout_mismatches(metadata, specs) == []


def test_topic_configs_follow_the_spec(running_stack) -> None:
    from confluent_kafka.admin import ConfigResource

    settings = running_stack.settings
    admin = _admin(settings.kafka_bootstrap_servers)
    for spec in load_topic_specs(settings.path(settings.kafka.topics_file)):
        resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
        configs = admin.describe_configs([resource])[resource].result()
        assert configs["min.insync.replicas"].value == "2"
        for key, value in spec.config.items():
            assert configs[key].value == value, (spec.name, key)


def test_auto_topic_creation_is_off(running_stack) -> None:
    bootstrap = running_stack.settings.kafka_bootstrap_servers
    ghost = f"it-ghost-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 3000})
    errors = []
    producer.produce(ghost, value=b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    assert ghost not in _admin(bootstrap).list_topics(timeout=10).topics


def test_produce_with_acks_all_and_consume_back(running_stack, scratch_topic) -> None:
    bootstrap = running_stack.settings.kafka_bootstrap_servers
    values = [f"card{i % 7}-{i}" for i in range(300)]
    acked: list[str] = []
    _produce(_producer(bootstrap), scratch_topic, values, acked)
    assert sorted(acked) == sorted(values)
    assert sorted(_consume_all(bootstrap, scratch_topic, len(values))) == sorted(values)


def test_one_broker_down_loses_no_acknowledged_message_and_rejoins_isr(running_stack, scratch_topic) -> None:
    stack, bootstrap = running_stack.stack, running_stack.settings.kafka_bootstrap_servers
    producer = _producer(bootstrap)
    acked: list[str] = []
    _produce(producer, scratch_topic, [f"card{i % 5}-before-{i}" for i in range(500)], acked)

    assert stack.down(["kafka-2"]) == ["kafka-2"]
    try:
        _produce(producer, scratch_topic, [f"card{i % 5}-during-{i}" for i in range(500)], acked)
        # writes keep succeeding with 2 of 3 replicas in sync (min.insync.replicas=2)
        assert len(acked) == 1000
        consumed = _consume_all(bootstrap, scratch_topic, len(acked))
        assert set(acked) <= set(consumed), f"{len(set(acked) - set(consumed))} acknowledged messages lost"
    finally:
        stack.start(["kafka-2"])

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        partitions = _admin(bootstrap).list_topics(scratch_topic, timeout=10).topics[scratch_topic].partitions
        if all(2 in p.isrs for p in partitions.values()):
            break
        time.sleep(1)
    assert all(2 in p.isrs for p in partitions.values()), {p.id: p.isrs for p in partitions.values()}
