from __future__ import annotations

from fraudops.config.settings import load_settings
from fraudops.stack.kafka_nodes import server_properties
from fraudops.stack.layout import StackLayout
from fraudops.topics import load_topic_specs


def test_topic_spec_has_the_platform_topics_with_rf3_and_isr2() -> None:
    settings = load_settings()
    specs = {s.name: s for s in load_topic_specs(settings.path(settings.kafka.topics_file))}
    assert set(specs) == {"transactions_stream", "fraud_predictions", "dead_letters", "model_updates"}
    for spec in specs.values():
        assert spec.replication_factor == 3
        assert spec.config["min.insync.replicas"] == "2"
    assert specs["model_updates"].config["cleanup.policy"] == "compact"


def test_brokers_form_one_three_voter_quorum_with_durable_internal_topics(tmp_path) -> None:
    settings = load_settings()
    nodes = [server_properties(settings, StackLayout(tmp_path), i) for i in (1, 2, 3)]
    assert len({n["controller.quorum.voters"] for n in nodes}) == 1
    assert nodes[0]["controller.quorum.voters"].count("@") == 3
    assert len({n["listeners"] for n in nodes}) == 3 and len({n["log.dirs"] for n in nodes}) == 3
    for node in nodes:
        assert node["auto.create.topics.enable"] == "false"
        assert node["min.insync.replicas"] == "2"
        assert node["offsets.topic.replication.factor"] == "3"
        assert node["transaction.state.log.min.isr"] == "2"


def test_layout_mismatches_name_each_difference() -> None:
    from types import SimpleNamespace

    from fraudops.topics import TopicSpec, layout_mismatches

    def partition(replicas, isrs):
        return SimpleNamespace(replicas=replicas, isrs=isrs)

    specs = [TopicSpec("a", 2, 3, {}), TopicSpec("b", 1, 3, {}), TopicSpec("c", 1, 3, {})]
    metadata = SimpleNamespace(
        topics={
            "a": SimpleNamespace(
                partitions={0: partition([1, 2, 3], [3, 1, 2]), 1: partition([2, 3, 1], [2, 3])}
            ),
            "b": SimpleNamespace(
                partitions={0: partition([1, 2], [1, 2]), 1: partition([1, 2, 3], [1, 2, 3])}
            ),
        }
    )
    assert layout_mismatches(metadata, specs) == [
        "a[1]: in sync [2, 3] of [2, 3, 1]",
        "b: 2 partitions, spec 1",
        "b[0]: 2 replicas, spec 3",
        "c: missing",
    ]
    healthy = SimpleNamespace(topics={"c": SimpleNamespace(partitions={0: partition([1, 2, 3], [2, 1, 3])})})
    assert layout_mismatches(healthy, specs[2:]) == []
