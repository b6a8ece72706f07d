"""The scorer's query, wired: Kafka source -> parse -> customer state -> foreachBatch(score and write)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from fraudops.settings import Settings

log = logging.getLogger("fraudops.scorer")


@dataclass(frozen=True)
class ScorerOptions:
    """What a run may override; the defaults come from ``settings.scorer`` and ``settings.mlflow``."""

    model_name: str
    alias: str
    source_topic: str
    predictions_topic: str
    dead_letters_topic: str
    checkpoint_dir: Path
    last_known_good_dir: Path
    starting_offsets: str
    max_offsets_per_trigger: int
    trigger_interval: str
    poll_interval_s: float
    dsn: str
    ui_port: int | None

    @classmethod
    def from_settings(cls, settings: Settings, dsn: str | None = None, **overrides: Any) -> ScorerOptions:
        s = settings.scorer
        if dsn is None:
            from fraudops.fraud_db import fraud_dsn
            from fraudops.secrets import load_secrets

            dsn = fraud_dsn(settings, load_secrets(settings.env_dir))
        options = cls(
            model_name=settings.mlflow.model_name,
            alias=s.alias,
            source_topic=s.source_topic,
            predictions_topic=s.predictions_topic,
            dead_letters_topic=s.dead_letters_topic,
            checkpoint_dir=settings.data_dir / s.checkpoint_dir,
            last_known_good_dir=settings.path(s.last_known_good_dir),
            starting_offsets=s.starting_offsets,
            max_offsets_per_trigger=s.max_offsets_per_trigger,
            trigger_interval=s.trigger_interval,
            poll_interval_s=s.poll_interval_s,
            dsn=dsn,
            ui_port=settings.stack.ports.spark_ui,
        )
        return replace(options, **{k: v for k, v in overrides.items() if v is not None})


def kafka_source(spark: Any, bootstrap_servers: str, options: ScorerOptions) -> Any:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", options.source_topic)
        .option("startingOffsets", options.starting_offsets)
        .option("maxOffsetsPerTrigger", options.max_offsets_per_trigger)
        .load()
    )


def build_scorer(settings: Settings, options: ScorerOptions) -> tuple[Any, Any]:
    """The champion watcher (started) and the foreachBatch body."""
    from fraudops import fraud_db
    from fraudops.scoring.models import ChampionWatcher, Registry
    from fraudops.scoring.sinks import BatchScorer, KafkaOut
    from fraudops.scoring.terminals import TerminalTable
    from fraudops.signals import MODEL_UPDATES_TOPIC

    fraud_db.create_tables(
        options.dsn, ["transactions_raw", "fraud_labels", "transactions_with_score", "fraud_alerts"]
    )
    watcher = ChampionWatcher(
        Registry(settings.mlflow_tracking_uri),
        options.model_name,
        options.alias,
        options.last_known_good_dir,
        options.poll_interval_s,
        settings.kafka_bootstrap_servers,
        MODEL_UPDATES_TOPIC,
    )
    watcher.start()
    terminals = TerminalTable(
        lambda start, end: fraud_db.read_terminal_history(options.dsn, start, end),
        timedelta(hours=settings.scorer.terminal_settle_hours),
    )

    def report(r: Any) -> None:
        log.info("batch %s", json.dumps(r.__dict__))

    scorer = BatchScorer(
        watcher,
        terminals,
        settings.model.thresholds,
        lambda table, frame: fraud_db.write_frame(options.dsn, table, frame),
        KafkaOut(settings.kafka_bootstrap_servers),
        options.predictions_topic,
        options.dead_letters_topic,
        report,
        row_at_a_time=settings.scorer.row_at_a_time,
    )
    return watcher, scorer


def start_query(spark: Any, settings: Settings, options: ScorerOptions, scorer: Any) -> Any:
    from fraudops.scoring.parse import parse_events
    from fraudops.scoring.state import with_customer_features

    records = kafka_source(spark, settings.kafka_bootstrap_servers, options)
    featured = with_customer_features(parse_events(records))
    options.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return (
        featured.writeStream.queryName("score_transactions")
        .outputMode("update")
        .foreachBatch(scorer)
        .option("checkpointLocation", str(options.checkpoint_dir))
        .trigger(processingTime=options.trigger_interval)
        .start()
    )


def session_conf(settings: Settings, options: ScorerOptions) -> dict[str, str]:
    conf = {
        "spark.sql.shuffle.partitions": str(settings.scorer.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
    }
    if options.ui_port is None:
        conf["spark.ui.enabled"] = "false"
    else:
        conf["spark.ui.port"] = str(options.ui_port)
    return conf


def run(settings: Settings, options: ScorerOptions) -> None:
    """Run the scorer until SIGTERM/SIGINT (graceful: the current micro-batch finishes)."""
    from fraudops.spark import build_session

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # fail fast when MLflow is down, so the last-known-good copy takes over instead of minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    watcher, scorer = build_scorer(settings, options)
    spark = build_session(settings, "score_transactions", **session_conf(settings, options))
    spark.sparkContext.setLogLevel("WARN")
    query = start_query(spark, settings, options, scorer)
    log.info(
        "scoring %s -> %s with %s@%s; checkpoints %s",
        options.source_topic,
        options.predictions_topic,
        options.model_name,
        options.alias,
        options.checkpoint_dir,
    )
    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping after the current micro-batch", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping.is_set() and query.isActive:
            query.awaitTermination(1)
        if query.exception() is not None:
            raise RuntimeError(f"scorer query failed: {query.exception()}")
    finally:
        watcher.stop()
        # a group-wide SIGTERM (`fraudops stack down`) may have taken the JVM already; the checkpoint and
        # the keyed inserts make that safe, so only a still-running query is stopped cleanly
        try:
            if query.isActive:
                query.stop()
            spark.stop()
        except Exception as exc:
            log.info("Spark already gone at stop: %s", type(exc).__name__)
