"""Streaming benchmark: drain throughput, live end-to-end latency and where a micro-batch's time goes.

    .venv/bin/python scripts/bench_stream.py [--rates 100,1000,5000] [--seconds 30] [--sustain-seconds 300]
        [--drain-events 200000] [--baseline-drain-events 50000]                     (make bench-stream)

One run, on the running stack (brought up when it is not), each phase with the real scorer process on
scratch topics and every sink on (Postgres tables, Kafka predictions and dead letters):

- live: the simulator at each offered rate (wall-clock event times, producer on this machine) for
  ``--seconds``; latency is the prediction's Kafka timestamp minus the transaction's, so it spans Kafka,
  the trigger, Spark, parsing, features, the model and the Postgres and Kafka writes;
- sustain: 2,000 tx/s for ``--sustain-seconds``: does the scorer keep up (latency in the first and the
  last minute, how long after the producer stops the last prediction comes);
- drain: ``--drain-events`` put on a topic first, then a fresh scorer reads it from the start;
- baseline: the same scorer calling the booster once per row (``scorer.row_at_a_time``), live at the
  two lower rates and a smaller drain;
- stages: per phase, the median micro-batch split into Spark's own work (offsets, planning, commit log)
  and the foreachBatch body (read = collect, parse, features, model, postgres, kafka), from the scorer's
  log.

It scores with the champion (`make demo` or a DAG run makes one) or, without one, with a throw-away model
trained here; its transactions carry their own id prefix and are deleted afterwards, and the fraud
database's training data is checked to be as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fraudops import fraud_db
from fraudops.config.settings import Settings, load_settings
from fraudops.history import next_stream_start
from fraudops.kafka_client import kafka_producer
from fraudops.producer import produce, simulated_stream
from fraudops.secrets import load_secrets
from fraudops.simulator import SimulatedTransaction
from fraudops.stack.manager import Stack
from fraudops.tracking import use_account

PARTITIONS = 6
SUSTAIN_RATE = 2000
STAGES = ("read", "parse", "features", "model", "postgres", "kafka")
SPARK_STAGES = ("latestOffset", "walCommit", "queryPlanning", "addBatch", "commitOffsets", "triggerExecution")


class Predictions(threading.Thread):
    """Collects (produced_at_ms, predicted_at_ms) of every prediction on a topic."""

    def __init__(self, settings: Settings, topic: str) -> None:
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
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])

    def run(self) -> None:
        while not self.stop_event.is_set():
            for msg in self.consumer.consume(5000, timeout=0.5):
                if msg.error() is None:
                    produced = json.loads(msg.value())["produced_at_ms"]
                    self.rows.append((int(produced), int(msg.timestamp()[1])))
        self.consumer.close()

    def between(self, start_ms: int, end_ms: int) -> np.ndarray:
        rows = np.array(self.rows, dtype=np.int64).reshape(-1, 2)
        return rows[(rows[:, 0] >= start_ms) & (rows[:, 0] < end_ms)]

    def wait_for(self, start_ms: int, end_ms: int, expected: int, timeout: float) -> np.ndarray:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.between(start_ms, end_ms)
            if len(rows) >= expected:
                return rows
            time.sleep(0.5)
        return self.between(start_ms, end_ms)


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
        client.get_model_version_by_alias(settings.mlflow.model_name, settings.mlflow.champion_alias)
        return settings.mlflow.model_name, False
    except MlflowException:
        pass
    from fraudops.features import build_features
    from fraudops.simulator import simulate
    from fraudops.train import train_model

    name = f"bench-{uuid.uuid4().hex[:8]}"
    print(
        f"no {settings.mlflow.model_name}@{settings.mlflow.champion_alias}: training a throw-away {name}",
        flush=True,
    )
    world = settings.simulator.model_copy(update={"n_customers": 1000, "n_terminals": 2000, "n_days": 160})
    result = train_model(
        build_features(simulate(world)),
        model_settings=settings.model,
        training=settings.training.model_copy(update={"experiment": "bench-stream"}),
        tracking_uri=settings.mlflow_tracking_uri,
        model_name=name,
    )
    client.set_registered_model_alias(name, settings.mlflow.champion_alias, result.model_version)
    return name, True


@dataclass
class ScorerRun:
    """One scorer process on its own scratch topics and checkpoint, with a reader of its predictions."""

    settings: Settings
    model: str
    row_at_a_time: bool
    tag: str
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def __post_init__(self) -> None:
        s = self.suffix
        self.source, self.predictions, self.dead = f"bench-tx-{s}", f"bench-pred-{s}", f"bench-dl-{s}"
        self.admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap_servers})
        topics = [NewTopic(self.source, PARTITIONS, 3), NewTopic(self.predictions, PARTITIONS, 3)]
        for future in self.admin.create_topics([*topics, NewTopic(self.dead, 1, 3)]).values():
            future.result()
        self.log_path = self.settings.data_dir / "logs" / f"bench-scorer-{self.tag}.log"
        self.process: subprocess.Popen | None = None
        self.reader = Predictions(self.settings, self.predictions)
        self.reader.start()

    def start(self) -> float:
        env = {
            **os.environ,
            "FRAUDOPS_SCORER__ROW_AT_A_TIME": str(self.row_at_a_time).lower(),
            "PYTHONUNBUFFERED": "1",
        }
        started = time.time()
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(self.settings.project_root / "spark-jobs" / "score_transactions.py"),
                *("--model-name", self.model, "--topic", self.source),
                *("--predictions-topic", self.predictions, "--dead-letters-topic", self.dead),
                *("--checkpoint", tempfile.mkdtemp(prefix="bench-ckpt-"), "--starting-offsets", "earliest"),
                "--no-ui",
            ],
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return started

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(90)
        self.reader.stop_event.set()
        self.reader.join(10)
        for future in self.admin.delete_topics([self.source, self.predictions, self.dead]).values():
            future.result()


def latency_row(phase: str, mode: str, rate: float, produced: int, rows: np.ndarray, span_s: float) -> dict:
    latency = rows[:, 1] - rows[:, 0] if len(rows) else np.array([np.nan])
    return {
        "phase": phase,
        "mode": mode,
        "rate": rate,
        "produced": produced,
        "predicted": len(rows),
        "predicted_per_s": len(rows) / span_s if span_s > 0 else float("nan"),
        "p50_ms": float(np.percentile(latency, 50)),
        "p95_ms": float(np.percentile(latency, 95)),
        "p99_ms": float(np.percentile(latency, 99)),
        "max_ms": float(np.max(latency)),
        "load_avg_1m": os.getloadavg()[0],
    }


def live(run: ScorerRun, stream: Iterator[SimulatedTransaction], rate: int, seconds: float) -> dict:
    producer = kafka_producer(run.settings.kafka_bootstrap_servers)
    start_ms = int(time.time() * 1000)
    stats = produce(stream, producer, run.source, rate=rate, duration_s=seconds)
    rows = run.reader.wait_for(start_ms, int(time.time() * 1000) + 1, stats.acked, timeout=180)
    span_s = (rows[:, 1].max() - start_ms) / 1000 if len(rows) else float("nan")
    mode = "row-at-a-time" if run.row_at_a_time else "vectorized"
    return latency_row("live", mode, round(stats.acked / stats.elapsed_s), stats.acked, rows, span_s)


def sustain(run: ScorerRun, stream: Iterator[SimulatedTransaction], seconds: float) -> dict:
    producer = kafka_producer(run.settings.kafka_bootstrap_servers)
    start_ms = int(time.time() * 1000)
    stats = produce(stream, producer, run.source, rate=SUSTAIN_RATE, duration_s=seconds)
    end_ms = int(time.time() * 1000) + 1
    rows = run.reader.wait_for(start_ms, end_ms, stats.acked, timeout=600)
    result = latency_row(
        "sustain", "vectorized", round(stats.acked / stats.elapsed_s), stats.acked, rows, seconds
    )
    latency = rows[:, 1] - rows[:, 0]
    first = latency[rows[:, 0] < start_ms + 60_000]
    last = latency[rows[:, 0] >= end_ms - 60_000]
    result |= {
        "first_minute_p99_ms": float(np.percentile(first, 99)) if len(first) else float("nan"),
        "last_minute_p99_ms": float(np.percentile(last, 99)) if len(last) else float("nan"),
        # how long the last prediction came after the producer stopped: a scorer that fell behind drains here
        "tail_after_stop_ms": float(rows[:, 1].max() - end_ms) if len(rows) else float("nan"),
    }
    result["caught_up"] = bool(
        result["predicted"] == stats.acked
        and result["last_minute_p99_ms"] <= 2 * result["first_minute_p99_ms"]
    )
    return result


def drain(settings: Settings, model: str, row_at_a_time: bool, stream, events: int) -> dict:
    """``events`` on the topic first; then a fresh scorer reads them from the start."""
    tag = "drain-row" if row_at_a_time else "drain"
    run = ScorerRun(settings, model, row_at_a_time, tag)
    try:
        stats = produce(stream, kafka_producer(settings.kafka_bootstrap_servers), run.source, limit=events)
        print(f"  {tag}: {stats.acked} events on the topic; starting the scorer", flush=True)
        started = run.start()
        rows = run.reader.wait_for(0, 2**62, stats.acked, timeout=1800)
        done = rows[:, 1].max() / 1000 if len(rows) else float("nan")
        first_batch = first_batch_started(run.log_path)
        busy_s = done - (first_batch or started)
        return {
            "phase": "drain",
            "mode": "row-at-a-time" if row_at_a_time else "vectorized",
            "events": stats.acked,
            "predicted": len(rows),
            "start_to_first_batch_s": (first_batch or float("nan")) - started,
            "scoring_s": busy_s,
            "tx_per_s": len(rows) / busy_s,
            "stages": stage_breakdown(run.log_path, 0, 2**62),
            "load_avg_1m": os.getloadavg()[0],
        }
    finally:
        run.stop()


_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO fraudops\.scorer: (batch|progress) (\{.*\})$"
)


def _log_entries(log_path: Path) -> Iterator[tuple[float, str, dict]]:
    for line in log_path.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match:
            at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
            yield at, match.group(2), json.loads(match.group(3))


def first_batch_started(log_path: Path) -> float | None:
    """Wall time the first micro-batch with rows began (its end minus its own duration)."""
    for at, kind, entry in _log_entries(log_path):
        if kind == "progress" and entry["rows"]:
            return at - entry["ms"].get("triggerExecution", 0) / 1000
    return None


def stage_breakdown(log_path: Path, start_s: float, end_s: float) -> dict:
    """Median ms per stage of the micro-batches with rows that ended in [start_s, end_s)."""
    ours: dict[str, list[float]] = {name: [] for name in STAGES}
    spark: dict[str, list[float]] = {name: [] for name in SPARK_STAGES}
    rows: list[int] = []
    for at, kind, entry in _log_entries(log_path):
        if not start_s <= at < end_s:
            continue
        if kind == "batch" and entry["rows"]:
            rows.append(entry["rows"])
            for name in STAGES:
                ours[name].append(entry["timings_ms"].get(name, 0.0))
        elif kind == "progress" and entry["rows"]:
            for name in SPARK_STAGES:
                spark[name].append(entry["ms"].get(name, 0))
    median = {f"body.{k}": float(np.median(v)) for k, v in ours.items() if v}
    median |= {f"spark.{k}": float(np.median(v)) for k, v in spark.items() if v}
    return {"batches": len(rows), "rows_per_batch_p50": float(np.median(rows)) if rows else 0.0, **median}


def run_live(
    settings: Settings,
    model: str,
    row_at_a_time: bool,
    stream,
    rates: list[int],
    seconds: float,
    sustain_s: float,
) -> list[dict]:
    tag = "live-row" if row_at_a_time else "live"
    run = ScorerRun(settings, model, row_at_a_time, tag)
    results = []
    try:
        run.start()
        # warm-up: the session, the model, the history and the first micro-batches
        start_ms = int(time.time() * 1000)
        warm = produce(
            stream, kafka_producer(settings.kafka_bootstrap_servers), run.source, rate=50, limit=200
        )
        got = run.reader.wait_for(start_ms, int(time.time() * 1000) + 1, warm.acked, timeout=300)
        if len(got) < warm.acked:
            raise RuntimeError(
                f"scorer produced {len(got)}/{warm.acked} warm-up predictions: see {run.log_path}"
            )
        phases = [(rate, seconds) for rate in rates] + ([(SUSTAIN_RATE, sustain_s)] if sustain_s else [])
        for i, (rate, duration) in enumerate(phases):
            began = time.time()
            is_sustain = sustain_s and i == len(phases) - 1
            result = sustain(run, stream, duration) if is_sustain else live(run, stream, rate, duration)
            result["offered"] = rate
            result["stages"] = stage_breakdown(run.log_path, began, time.time())
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        run.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,1000,5000")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--sustain-seconds", type=float, default=300.0)
    parser.add_argument("--drain-events", type=int, default=200_000)
    parser.add_argument("--baseline-rates", default="100,1000")
    parser.add_argument("--baseline-drain-events", type=int, default=50_000)
    args = parser.parse_args()
    settings = load_settings()
    Stack(settings).up()  # a no-op when it runs
    secrets = load_secrets(settings.env_dir)
    dsn = fraud_db.fraud_dsn(settings, secrets)
    # registers (and deletes) a throw-away model when there is no champion: the pipeline's MLflow account
    use_account(secrets, "pipeline")
    before = fraud_db.training_data_fingerprint(dsn)
    model, throw_away = scoring_model(settings)
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    stream = own_ids(
        simulated_stream(settings, next_stream_start(settings.simulator, dsn), "wallclock"), prefix
    )
    rates = [int(r) for r in args.rates.split(",")]
    results: list[dict] = []
    try:
        results += run_live(settings, model, False, stream, rates, args.seconds, args.sustain_seconds)
        if args.drain_events:
            results.append(drain(settings, model, False, stream, args.drain_events))
            print(json.dumps(results[-1]), flush=True)
        baseline = [int(r) for r in args.baseline_rates.split(",") if r]
        results += run_live(settings, model, True, stream, baseline, args.seconds, 0)
        if args.baseline_drain_events:
            results.append(drain(settings, model, True, stream, args.baseline_drain_events))
            print(json.dumps(results[-1]), flush=True)
    finally:
        fraud_db.delete_transactions(dsn, prefix)
        if throw_away:
            from mlflow import MlflowClient

            use_account(secrets, "pipeline")
            MlflowClient(settings.mlflow_tracking_uri).delete_registered_model(model)
    if fraud_db.training_data_fingerprint(dsn) != before:
        raise SystemExit("the benchmark changed the fraud database's training data")
    report(results)
    out = Path(settings.data_dir) / "logs" / "bench-stream.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nfigures: {out}")


def report(results: list[dict]) -> None:
    print(
        f"\n{'phase':<8} {'mode':<14} {'offered/s':>9} {'scored':>8} {'scored/s':>9} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'load':>5}"
    )
    for r in results:
        if r["phase"] == "drain":
            print(
                f"{'drain':<8} {r['mode']:<14} {'-':>9} {r['predicted']:>8} {r['tx_per_s']:>9.0f} "
                f"{'-':>8} {'-':>8} {'-':>8} {r['load_avg_1m']:>5.1f}"
            )
        else:
            print(
                f"{r['phase']:<8} {r['mode']:<14} {r['offered']:>9} {r['predicted']:>8} "
                f"{r['predicted_per_s']:>9.0f} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} {r['p99_ms']:>8.0f} "
                f"{r['load_avg_1m']:>5.1f}"
            )
    for r in results:
        if r["phase"] == "sustain":
            print(
                f"\nsustain {SUSTAIN_RATE}/s: p99 first minute {r['first_minute_p99_ms']:.0f} ms, "
                f"last minute {r['last_minute_p99_ms']:.0f} ms, last prediction "
                f"{r['tail_after_stop_ms']:.0f} ms after the producer stopped: "
                f"{'caught up' if r['caught_up'] else 'FELL BEHIND'}"
            )
    columns = [f"body.{s}" for s in STAGES] + [f"spark.{s}" for s in SPARK_STAGES]
    print(
        f"\nmedian micro-batch (ms){'':<14}{'rows':>6} "
        + " ".join(f"{c.split('.')[1][:9]:>9}" for c in columns)
    )
    for r in results:
        st = r["stages"]
        label = f"{r['phase']} {r['mode'][:3]} {r.get('offered', '')}"
        print(
            f"{label:<37}{st['rows_per_batch_p50']:>6.0f} "
            + " ".join(f"{st.get(c, float('nan')):>9.0f}" for c in columns)
        )
    print("body = the foreachBatch body (read = collect); spark.addBatch contains it; triggerExecution = all")


if __name__ == "__main__":
    main()
