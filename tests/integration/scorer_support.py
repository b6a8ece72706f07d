"""Helpers of the scorer's integration tests: a throw-away champion, scratch topics, a scorer process
that can be killed, an isolated event stream (unique ids, customers and terminals), Postgres checks.

Test rows carry a unique transaction-id prefix and are deleted afterwards; events are dated 2005, far
from any window the retraining DAG reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from fraudops import fraud_db
from fraudops.config.model import SimulatorSettings
from fraudops.features import FEATURE_NAMES
from fraudops.simulator import SimulatedTransaction, stream_transactions

# ~600 transactions a simulated day
# the streams start 45 days back: the scorer takes events up to 60 days older than their Kafka record
STREAM_START = datetime.combine(date.today() - timedelta(days=45), datetime.min.time())
TEST_WORLD = SimulatorSettings(
    n_customers=300, n_terminals=600, n_days=60, start_date=STREAM_START.date(), seed=11
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- a throw-away registered model -------------------------------------------------------------------------


def train_tiny_model(seed: int, rounds: int) -> Any:
    """A small real XGBoost fraud model (seconds)."""
    from fraudops.config.model import XGBoostParams
    from fraudops.features import build_features, feature_matrix
    from fraudops.model_families import Dataset, fit_xgboost
    from fraudops.simulator import simulate

    tx = simulate(TEST_WORLD.model_copy(update={"n_days": 50, "seed": seed}))
    feats = build_features(tx)
    feats = feats[feats["tx_datetime"] >= feats["tx_datetime"].min() + np.timedelta64(37, "D")]
    X, y = feature_matrix(feats), feats["tx_fraud"].to_numpy()
    half = len(y) * 3 // 4
    params = XGBoostParams(n_estimators=rounds, max_depth=3)
    return fit_xgboost(
        Dataset(X[:half], y[:half]),
        Dataset(X[half:], y[half:]),
        params,
        class_weight="sqrt",
        threads=1,
        seed=seed,
        early_stopping_rounds=rounds,
    )


def register_version(tracking_uri: str, name: str, seed: int, rounds: int, alias: str | None) -> str:
    import mlflow

    from fraudops.tracking import example_frame, experiment_id, model_signature, use_tracking_uri

    use_tracking_uri(tracking_uri)
    model = train_tiny_model(seed, rounds)
    example = example_frame(np.zeros((2, len(FEATURE_NAMES))))
    # the scorer loads only a model whose signature is its feature list
    signature = model_signature(example, model.predict(example.to_numpy()))
    with mlflow.start_run(experiment_id=experiment_id("it-scorer")):
        info = model.log_to_mlflow(name="model", signature=signature, input_example=None)
    version = mlflow.register_model(info.model_uri, name).version
    if alias:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, version)
    return str(version)


def delete_model(tracking_uri: str, name: str) -> None:
    import mlflow

    try:
        mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).delete_registered_model(
            name
        )
    except Exception:  # already gone
        pass


# -- topics -----------------------------------------------------------------------------------------------


def create_topics(bootstrap: str, names: list[str], partitions: int = 3) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(n, partitions, 3, config={"min.insync.replicas": "2"}) for n in names]
    for future in admin.create_topics(new).values():
        future.result()


def delete_topics(bootstrap: str, names: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(names).values():
        try:
            future.result()
        except Exception:
            pass


def read_topic(bootstrap: str, topic: str, timeout_s: float = 20.0, expect: int | None = None) -> list[Any]:
    """Every message on ``topic`` (values decoded as JSON), read with a fresh consumer group."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("it-read"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline, idle_since = time.monotonic() + timeout_s, time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                if out and time.monotonic() - idle_since > 3 and (expect is None or len(out) >= expect):
                    break
                continue
            idle_since = time.monotonic()
            out.append(json.loads(msg.value()))
    finally:
        consumer.close()
    return out


# -- the event stream --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsolatedStream:
    """Simulated events with a unique id prefix and customer/terminal ids shifted into a private range."""

    prefix: str
    id_base: int

    @classmethod
    def new(cls, tag: str) -> IsolatedStream:
        return cls(unique(f"it6{tag}"), int(uuid.uuid4().int % 10**6) * 10**6 + 10**12)

    def events(self, start: datetime = STREAM_START) -> Iterator[SimulatedTransaction]:
        for tx in stream_transactions(TEST_WORLD, start):
            event = dict(tx.event)
            event["transaction_id"] = f"{self.prefix}-{event['transaction_id']}"
            event["customer_id"] += self.id_base
            event["terminal_id"] += self.id_base
            yield SimulatedTransaction(event, tx.tx_fraud, tx.tx_fraud_scenario)


# -- the scorer process -------------------------------------------------------------------------------------


@dataclass
class ScorerProcess:
    args: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "spark-jobs/score_transactions.py", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill(self) -> None:
        """SIGKILL the scorer and its JVM (its own process group): a crash, no graceful stop."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def scorer_args(
    model: str,
    topic: str,
    predictions: str,
    dead_letters: str,
    checkpoint: Path,
    models_dir: Path,
    max_offsets: int = 2000,
) -> list[str]:
    return [
        "--model-name",
        model,
        "--topic",
        topic,
        "--predictions-topic",
        predictions,
        "--dead-letters-topic",
        dead_letters,
        "--checkpoint",
        str(checkpoint),
        "--models-dir",
        str(models_dir),
        "--poll-interval",
        "2",
        "--max-offsets-per-trigger",
        str(max_offsets),
        "--trigger-interval",
        "1 second",
        "--no-ui",
    ]


# -- Postgres ----------------------------------------------------------------------------------------------


def query(dsn: str, sql: str, params: Any = None) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


def scored_ids(dsn: str, prefix: str) -> list[str]:
    rows = query(
        dsn,
        "SELECT transaction_id FROM transactions_with_score WHERE transaction_id LIKE %s",
        (prefix + "-%",),
    )
    return [r[0] for r in rows]


def wait_scored(dsn: str, prefix: str, expected: int, scorer: ScorerProcess | None, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count = len(scored_ids(dsn, prefix))
        if count >= expected:
            return count
        if scorer is not None and not scorer.alive():
            raise AssertionError(f"scorer died:\n{scorer.log_tail()}")
        time.sleep(1)
    return count


def delete_rows(dsn: str, prefix: str) -> None:
    fraud_db.delete_transactions(dsn, prefix + "-")
