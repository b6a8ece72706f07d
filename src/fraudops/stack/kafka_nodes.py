"""KRaft node configuration for the native three-broker cluster (combined broker + controller nodes)."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from fraudops.config.settings import Settings
from fraudops.stack.layout import StackLayout

# Cluster-wide durability settings; docker-compose.yaml sets the same values (a test compares them).
DURABILITY = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
    "auto.create.topics.enable": "false",
    "unclean.leader.election.enable": "false",
}

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def node_name(node_id: int) -> str:
    return f"kafka-{node_id}"


def cluster_id(layout: StackLayout) -> str:
    path = layout.data / "kafka-cluster.id"
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=") + "\n")
    return path.read_text().strip()


def server_properties(settings: Settings, layout: StackLayout, node_id: int) -> dict[str, str]:
    host, ports = settings.stack.host, settings.stack.ports
    voters = ",".join(f"{i}@{host}:{p}" for i, p in enumerate(ports.kafka_controller, start=1))
    port, controller_port = ports.kafka[node_id - 1], ports.kafka_controller[node_id - 1]
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(layout.data_of(node_name(node_id)) / "log"),
        "num.partitions": "3",
        "group.initial.rebalance.delay.ms": "0",
        **DURABILITY,
    }


def java_command(
    layout: StackLayout, heap: str, main_class: str, *args: str, agents: tuple[str, ...] = ()
) -> list[str]:
    return [
        "java",
        *agents,
        f"-Xmx{heap}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={layout.run / 'kafka-log4j2.properties'}",
        "-cp",
        str(layout.lib / "kafka" / "*"),
        main_class,
        *args,
    ]


def jmx_agent(settings: Settings, layout: StackLayout, node_id: int) -> str:
    """The Prometheus JMX exporter agent of a broker: its metrics on stack.host, stack.ports.kafka_jmx."""
    jar = next(iter(sorted((layout.lib / "jmx").glob("jmx_prometheus_javaagent-*.jar"))), None)
    if jar is None:
        raise FileNotFoundError(
            f"no JMX exporter agent in {layout.lib / 'jmx'}: run `make up` (it fetches it)"
        )
    port = settings.stack.ports.kafka_jmx[node_id - 1]
    rules = settings.path("configs/prometheus/kafka-jmx.yml")
    return f"-javaagent:{jar}={settings.stack.host}:{port}:{rules}"


def prepare_node(settings: Settings, layout: StackLayout, node_id: int) -> Path:
    """Write the node's properties and format its storage once. Returns the properties file."""
    props = layout.run / f"{node_name(node_id)}.properties"
    props.write_text("".join(f"{k}={v}\n" for k, v in server_properties(settings, layout, node_id).items()))
    (layout.run / "kafka-log4j2.properties").write_text(LOG4J2)
    if not (layout.data_of(node_name(node_id)) / "log" / "meta.properties").exists():
        subprocess.run(
            java_command(
                layout,
                "256m",
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                cluster_id(layout),
                "-c",
                str(props),
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return props
