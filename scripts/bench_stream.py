"""Streaming benchmark: sustained throughput and end-to-end latency of the Spark scorer.

    .venv/bin/python scripts/bench_stream.py [--rates 100,500,2000] [--seconds 30]   (make bench-stream)

For each scoring mode (vectorized: the whole micro-batch through the native booster; row-at-a-time: one
booster call per transaction, the baseline) it starts the real scorer on scratch topics of the running
stack, streams the simulator at each rate with wall-clock event times, and reads the predictions back.
Latency is the prediction's Kafka timestamp minus the transaction's produce time (both recorded by Kafka),
so it spans Kafka, the micro-batch trigger, Spark, features, the model and the Postgres and Kafka writes.
It brings the stack up when it is not, scores with the champion (`make demo` or a DAG run makes one) or,
without one, with a throw-away model trained here on simulated data, and leaves the fraud database's
training data as it found it: its transactions carry their own id prefix and are deleted afterwards,
which is checked.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fraudops import fraud_db
from fraudops.history import next_stream_start
from fraudops.producer import kafka_producer, produce, simulated_stream
from fraudops.secrets import load_secrets
from fraudops.settings import Settings, load_settings
from fraudops.simulator import SimulatedTransaction
from fraudops.stack.manager import Stack


class Predictions(threading.Thread):
    """Collects (produced_at_ms, predicted_at_ms) of every prediction on a topic."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        super().__init__(daemon=True)
        self.rows: list[tuple[int, int]] = []
        self.stop_event = threading.Event()
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "group.id": f"bench-{uuid.uuid4()}",
                "enable.auto.commit": False,
            }
        )
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])

    def run(self) -> None:
        while not self.stop_event.is_set():
            for msg in self.consumer.consume(1000, timeout=0.5):
                if msg.error() is None:
                    produced = json.loads(msg.value())["produced_at_ms"]
                    self.rows.append((int(produced), int(msg.timestamp()[1])))
        self.consumer.close()

    def between(self, start_ms: int, end_ms: int) -> np.ndarray:
        return np.array([r for r in self.rows if start_ms <= r[0] < end_ms], dtype=np.int64).reshape(-1, 2)


def wait_for(
    predictions: Predictions, start_ms: int, end_ms: int, expected: int, timeout: float
) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = predictions.between(start_ms, end_ms)
        if len(rows) >= expected:
            return rows
        time.sleep(1)
    return predictions.between(start_ms, end_ms)


def own_ids(stream: Iterator[SimulatedTransaction], prefix: str) -> Iterator[SimulatedTransaction]:
    """The stream with every transaction id prefixed, so the benchmark's rows can be found and deleted."""
    for tx in stream:
        yield SimulatedTransaction(
            event={**tx.event, "transaction_id": prefix + tx.event["transaction_id"]},
            tx_fraud=tx.tx_fraud,
            tx_fraud_scenario=tx.tx_fraud_scenario,
        )


def scoring_model(settings: Settings) -> tuple[str, bool]:
    """(registered model to score with, whether it is a throw-away one of the benchmark's own)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(settings.mlflow_tracking_uri)
    try:
        client.get_model_version_by_alias(settings.mlflow.model_name, settings.scorer.alias)
        return settings.mlflow.model_name, False
    except MlflowException:
        pass
    from fraudops.features import build_features
    from fraudops.simulator import simulate

    name = f"bench-{uuid.uuid4().hex[:8]}"
    print(
        f"no {settings.mlflow.model_name}@{settings.scorer.alias}: training a throw-away {name}", flush=True
    )
    world = settings.simulator.model_copy(update={"n_customers": 1000, "n_terminals": 2000, "n_days": 160})
    from fraudops.train import train_model

    result = train_model(
        build_features(simulate(world)),
        model_settings=settings.model,
        training=settings.training.model_copy(update={"experiment": "bench-stream"}),
        tracking_uri=settings.mlflow_tracking_uri,
        model_name=name,
    )
    client.set_registered_model_alias(name, settings.scorer.alias, result.model_version)
    return name, True


def run_mode(
    settings: Settings, model: str, row_at_a_time: bool, rates: list[int], seconds: float
) -> list[dict]:
    suffix = uuid.uuid4().hex[:8]
    source, predictions_topic, dead = f"bench-tx-{suffix}", f"bench-pred-{suffix}", f"bench-dl-{suffix}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    partitions = 6
    for future in admin.create_topics(
        [NewTopic(source, partitions, 3), NewTopic(predictions_topic, partitions, 3), NewTopic(dead, 1, 3)]
    ).values():
        future.result()
    checkpoints = tempfile.mkdtemp(prefix="bench-ckpt-")
    env = {
        **os.environ,
        "FRAUDOPS_SCORER__ROW_AT_A_TIME": str(row_at_a_time).lower(),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = settings.data_dir / "logs" / f"bench-scorer-{'row' if row_at_a_time else 'batch'}.log"
    scorer = subprocess.Popen(
        [
            sys.executable,
            str(settings.project_root / "spark-jobs" / "score_transactions.py"),
            "--model-name",
            model,
            "--topic",
            source,
            "--predictions-topic",
            predictions_topic,
            "--dead-letters-topic",
            dead,
            "--checkpoint",
            checkpoints,
            "--starting-offsets",
            "earliest",
            "--no-ui",
        ],
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    reader = Predictions(settings, predictions_topic, partitions)
    reader.start()
    results = []
    dsn = fraud_db.fraud_dsn(settings, load_secrets(settings.env_dir))
    prefix = f"bench-{suffix}-"
    try:
        stream = own_ids(
            simulated_stream(settings, next_stream_start(settings.simulator, dsn), "wallclock"), prefix
        )
        producer = kafka_producer(settings.kafka_bootstrap_servers)
        # warm-up: the session, the model and the first micro-batches
        start_ms = int(time.time() * 1000)
        warm = produce(stream, producer, source, rate=50, limit=200)
        got = wait_for(reader, start_ms, int(time.time() * 1000) + 1, warm.acked, timeout=300)
        if len(got) < warm.acked:
            raise RuntimeError(f"scorer produced {len(got)}/{warm.acked} warm-up predictions: see {log_path}")
        for rate in rates:
            start_ms = int(time.time() * 1000)
            stats = produce(stream, producer, source, rate=rate, duration_s=seconds)
            end_ms = int(time.time() * 1000) + 1
            rows = wait_for(reader, start_ms, end_ms, stats.acked, timeout=120)
            latency = rows[:, 1] - rows[:, 0]
            span_s = (rows[:, 1].max() - start_ms) / 1000 if len(rows) else float("nan")
            results.append(
                {
                    "mode": "row-at-a-time" if row_at_a_time else "vectorized",
                    "rate": rate,
                    "produced": stats.acked,
                    "predicted": len(rows),
                    "produced_per_s": stats.acked / stats.elapsed_s,
                    "predicted_per_s": len(rows) / span_s,
                    "p50_ms": float(np.percentile(latency, 50)),
                    "p95_ms": float(np.percentile(latency, 95)),
                    "p99_ms": float(np.percentile(latency, 99)),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    finally:
        os.killpg(scorer.pid, signal.SIGTERM)
        scorer.wait(60)
        reader.stop_event.set()
        reader.join(10)
        for future in admin.delete_topics([source, predictions_topic, dead]).values():
            future.result()
        fraud_db.delete_transactions(dsn, prefix)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,500,2000")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    settings = load_settings()
    rates = [int(r) for r in args.rates.split(",")]
    Stack(settings).up()  # a no-op when it runs
    dsn = fraud_db.fraud_dsn(settings, load_secrets(settings.env_dir))
    before = fraud_db.training_data_fingerprint(dsn)
    model, throw_away = scoring_model(settings)
    try:
        results = run_mode(settings, model, False, rates, args.seconds)
        results += run_mode(settings, model, True, rates, args.seconds)
    finally:
        if throw_away:
            from mlflow import MlflowClient

            MlflowClient(settings.mlflow_tracking_uri).delete_registered_model(model)
    if fraud_db.training_data_fingerprint(dsn) != before:
        raise SystemExit("the benchmark changed the fraud database's training data")
    print(
        f"\n{'mode':<14} {'rate/s':>7} {'produced':>9} {'scored':>7} {'scored/s':>9} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    )
    for r in results:
        print(
            f"{r['mode']:<14} {r['rate']:>7} {r['produced']:>9} {r['predicted']:>7} "
            f"{r['predicted_per_s']:>9.0f} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} {r['p99_ms']:>8.0f}"
        )
    out = Path(settings.data_dir) / "logs" / "bench-stream.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nfigures: {out}")


if __name__ == "__main__":
    main()
