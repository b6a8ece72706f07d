from __future__ import annotations

from fraudops.settings import load_settings
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
