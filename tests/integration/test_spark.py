"""Spark: a local session (spark.master local[2], the scorer's setting without a cluster) reads a Kafka topic
through the spark-sql-kafka connector; test_spark_cluster.py runs on the standalone cluster."""

from __future__ import annotations

import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from fraudops.spark import build_session


def test_structured_streaming_reads_kafka(running_stack, tmp_path) -> None:
    settings = running_stack.settings
    bootstrap = settings.kafka_bootstrap_servers
    topic = f"it-spark-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 2, 3)])[topic].result()
    try:
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
        expected = {f"tx-{i}" for i in range(50)}
        for value in expected:
            producer.produce(topic, key=value, value=value)
        assert producer.flush(30) == 0

        spark = build_session(settings, "it-kafka-read", master="local[2]")
        try:
            stream = (
                spark.readStream.format("kafka")
                .option("kafka.bootstrap.servers", bootstrap)
                .option("subscribe", topic)
                .option("startingOffsets", "earliest")
                .load()
            )
            query = (
                stream.selectExpr("CAST(value AS STRING) AS value")
                .writeStream.format("memory")
                .queryName("kafka_read")
                .option("checkpointLocation", str(tmp_path / "ckpt"))
                .trigger(availableNow=True)
                .start()
            )
            query.awaitTermination(120)
            got = {row.value for row in spark.sql("SELECT value FROM kafka_read").collect()}
        finally:
            spark.stop()
        assert got == expected
    finally:
        admin.delete_topics([topic])[topic].result()
