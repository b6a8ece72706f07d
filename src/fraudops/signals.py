"""The reload signal: a `model_updates` event on Kafka, keyed by model name.

The topic is compacted, so the latest promotion per model is always there for a scorer that starts late.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

MODEL_UPDATES_TOPIC = "model_updates"


@dataclass(frozen=True)
class ModelUpdate:
    model_name: str
    version: str
    alias: str
    run_id: str
    action: str  # promote | rollback | manual
    emitted_at: str

    @classmethod
    def now(cls, model_name: str, version: str, alias: str, run_id: str, action: str) -> ModelUpdate:
        return cls(model_name, str(version), alias, run_id, action, datetime.now(UTC).isoformat())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, payload: str | bytes) -> ModelUpdate:
        return cls(**json.loads(payload))


def publish_model_update(bootstrap_servers: str, update: ModelUpdate, timeout: float = 30.0) -> None:
    """Publish durably (acks=all, idempotent); raises if the brokers did not acknowledge it."""
    from confluent_kafka import KafkaException

    from fraudops.kafka_client import kafka_producer

    producer = kafka_producer(bootstrap_servers)
    errors: list[object] = []
    producer.produce(
        MODEL_UPDATES_TOPIC,
        key=update.model_name,
        value=update.to_json(),
        on_delivery=lambda err, _msg: errors.append(err),
    )
    if producer.flush(timeout) != 0 or not errors:
        raise TimeoutError(f"model update for {update.model_name} v{update.version} not acknowledged")
    if errors[0] is not None:
        raise KafkaException(errors[0])


def read_model_updates(bootstrap_servers: str, model_name: str, idle_polls: int = 3) -> list[ModelUpdate]:
    """Every update of ``model_name`` still on the topic, oldest first (the topic is compacted, so older
    promotions of a model may be gone). Reads until ``idle_polls`` one-second polls bring nothing."""
    import uuid

    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"model-updates-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(MODEL_UPDATES_TOPIC, 0, 0)])
    updates, idle = [], 0
    try:
        while idle < idle_polls:
            msg = consumer.poll(1.0)
            if msg is None:
                idle += 1
            elif msg.error() is None and msg.key() is not None and msg.key().decode() == model_name:
                updates.append(ModelUpdate.from_json(msg.value()))
    finally:
        consumer.close()
    return updates
