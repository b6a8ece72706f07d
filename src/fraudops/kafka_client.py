"""The one Kafka producer configuration of the platform: durable writes (acks=all, idempotent, retried
while a broker restarts or a leader moves), used by the transaction producer, the scorer's sinks and the
reload signal."""

from __future__ import annotations

from typing import Any


def kafka_producer(bootstrap_servers: str, **overrides: Any) -> Any:
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
            # retries are idempotent: keep trying while a broker restarts or a leader moves
            "delivery.timeout.ms": 120_000,
            **overrides,
        }
    )
