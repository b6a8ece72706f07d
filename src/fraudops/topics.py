"""Kafka topics from the one spec file (kafka/topics.yaml), created idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


def load_topic_specs(path: Path) -> list[TopicSpec]:
    raw = yaml.safe_load(path.read_text())
    defaults = raw.get("defaults", {})
    specs = []
    for name, topic in raw["topics"].items():
        topic = topic or {}
        config = {**defaults.get("config", {}), **topic.get("config", {})}
        specs.append(
            TopicSpec(
                name=name,
                partitions=int(topic.get("partitions", defaults.get("partitions", 1))),
                replication_factor=int(
                    topic.get("replication_factor", defaults.get("replication_factor", 3))
                ),
                config={k: str(v) for k, v in config.items()},
            )
        )
    return specs


def layout_mismatches(metadata: Any, specs: list[TopicSpec]) -> list[str]:
    """How the brokers' topics (``AdminClient.list_topics`` metadata) differ from the spec: a missing
    topic, another partition count or replication factor, a replica out of sync. Empty when they agree."""
    problems = []
    for spec in specs:
        topic = metadata.topics.get(spec.name)
        if topic is None:
            problems.append(f"{spec.name}: missing")
            continue
        if len(topic.partitions) != spec.partitions:
            problems.append(f"{spec.name}: {len(topic.partitions)} partitions, spec {spec.partitions}")
        for number, partition in sorted(topic.partitions.items()):
            replicas = len(partition.replicas)
            if replicas != spec.replication_factor:
                problems.append(f"{spec.name}[{number}]: {replicas} replicas, spec {spec.replication_factor}")
            if sorted(partition.isrs) != sorted(partition.replicas):
                problems.append(f"{spec.name}[{number}]: in sync {partition.isrs} of {partition.replicas}")
    return problems


def create_topics(bootstrap_servers: str, specs: list[TopicSpec], timeout: float = 30.0) -> dict[str, str]:
    """Create the missing topics; report each as 'created' or 'exists'. Fails on a topic whose partition
    count or replication differs from the spec, since silently living with it breaks the guarantees."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    existing = admin.list_topics(timeout=timeout).topics
    result: dict[str, str] = {}
    missing = [s for s in specs if s.name not in existing]
    for spec in specs:
        if spec.name in existing:
            meta = existing[spec.name]
            replicas = {len(p.replicas) for p in meta.partitions.values()}
            if len(meta.partitions) != spec.partitions or replicas != {spec.replication_factor}:
                raise RuntimeError(
                    f"topic {spec.name} has {len(meta.partitions)} partitions x RF {sorted(replicas)}, "
                    f"spec wants {spec.partitions} x RF {spec.replication_factor}"
                )
            result[spec.name] = "exists"
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor, config=s.config) for s in missing],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            future.result()
            result[name] = "created"
    return result
