"""The scorer's query, wired: Kafka source -> foreachBatch(parse, features, score and write).

The Spark query is stateless: Spark owns the Kafka offsets and the checkpoint (offset log before, commit
log after each micro-batch), and the micro-batch is computed in the driver in one vectorized pass against
the in-memory customer and terminal tables (:mod:`fraudops.scoring.batch`), so no Python call runs per
customer or per partition.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fraudops.config.settings import Settings

log = logging.getLogger("fraudops.scorer")


@dataclass(frozen=True)
class ScorerOptions:
    """What a run may override; the defaults come from ``settings.scorer`` and ``settings.mlflow``."""

    model_name: str
    alias: str
    source_topic: str
    predictions_topic: str
    dead_letters_topic: str
    # a local folder, or a Hadoop file-system URI (s3a://bucket/prefix) for checkpoints on object storage
    checkpoint_location: str
    last_known_good_dir: Path
    starting_offsets: str
    max_offsets_per_trigger: int
    kafka_fetch_max_wait_ms: int
    trigger_interval: str
    poll_interval_s: float
    dsn: str
    ui_port: int | None
    # where the scorer serves its Prometheus metrics (None: not served)
    metrics_port: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, dsn: str, **overrides: Any) -> ScorerOptions:
        """``dsn``: the fraud database (from the secrets the entry point loaded)."""
        s = settings.scorer
        options = cls(
            model_name=settings.mlflow.model_name,
            alias=settings.mlflow.champion_alias,
            source_topic=s.source_topic,
            predictions_topic=s.predictions_topic,
            dead_letters_topic=s.dead_letters_topic,
            checkpoint_location=checkpoint_location(settings.data_dir, s.checkpoint_dir),
            last_known_good_dir=settings.path(s.last_known_good_dir),
            starting_offsets=s.starting_offsets,
            max_offsets_per_trigger=s.max_offsets_per_trigger,
            kafka_fetch_max_wait_ms=s.kafka_fetch_max_wait_ms,
            trigger_interval=s.trigger_interval,
            poll_interval_s=s.poll_interval_s,
            dsn=dsn,
            ui_port=settings.stack.ports.spark_ui,
            metrics_port=settings.stack.ports.scorer_metrics,
        )
        return replace(options, **{k: v for k, v in overrides.items() if v is not None})


def checkpoint_location(base: Path, configured: str | Path) -> str:
    """A URI with a scheme stays as is; a local path is resolved against ``base`` (the data folder)."""
    text = str(configured)
    if "://" in text:
        return text
    return str((base / text).resolve())


def is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


def kafka_source(spark: Any, bootstrap_servers: str, options: ScorerOptions) -> Any:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", options.source_topic)
        .option("startingOffsets", options.starting_offsets)
        .option("maxOffsetsPerTrigger", options.max_offsets_per_trigger)
        .option("kafka.fetch.max.wait.ms", options.kafka_fetch_max_wait_ms)
        .load()
    )


def build_scorer(settings: Settings, options: ScorerOptions, metrics: Any | None = None) -> tuple[Any, Any]:
    """The champion watcher (started) and the foreachBatch body."""
    from fraudops import fraud_db
    from fraudops.registry import MlflowRegistry
    from fraudops.scoring.champion import ChampionWatcher
    from fraudops.scoring.customers import CustomerWindows
    from fraudops.scoring.parse import EventTimeWindow
    from fraudops.scoring.sinks import BatchScorer, KafkaOut
    from fraudops.scoring.store import PostgresStore
    from fraudops.scoring.terminals import TerminalTable
    from fraudops.signals import MODEL_UPDATES_TOPIC

    # its role creates nothing: the init step (`make up`, compose's postgres-init) made the tables
    fraud_db.require_tables(
        options.dsn,
        ["transactions_raw", "fraud_labels", "transactions_with_score", "fraud_alerts", "scorer_batches"],
    )
    watcher = ChampionWatcher(
        MlflowRegistry.from_settings(settings, model_name=options.model_name, champion_alias=options.alias),
        options.last_known_good_dir,
        options.poll_interval_s,
        settings.kafka_bootstrap_servers,
        MODEL_UPDATES_TOPIC,
        on_refused=metrics.record_refused if metrics is not None else None,
    )
    watcher.start()
    terminals = TerminalTable(
        lambda start, end: fraud_db.read_terminal_history(options.dsn, start, end),
        timedelta(hours=settings.scorer.terminal_settle_hours),
    )

    def report(r: Any) -> None:
        log.info("batch %s", json.dumps(r.__dict__))

    customers = CustomerWindows(lambda start: fraud_db.read_customer_history(options.dsn, start))
    scorer = BatchScorer(
        watcher,
        customers,
        terminals,
        settings.model.thresholds,
        PostgresStore(options.dsn, options.checkpoint_location),
        KafkaOut(settings.kafka_bootstrap_servers),
        options.predictions_topic,
        options.dead_letters_topic,
        EventTimeWindow.of(settings.scorer),
        report,
        row_at_a_time=settings.scorer.row_at_a_time,
        retry_for_s=settings.scorer.fault_retry_s,
        metrics=metrics,
    )
    return watcher, scorer


def start_query(spark: Any, settings: Settings, options: ScorerOptions, scorer: Any) -> Any:
    from fraudops.scoring.parse import kafka_records

    records = kafka_records(kafka_source(spark, settings.kafka_bootstrap_servers, options))
    if is_local(options.checkpoint_location):
        folder = Path(options.checkpoint_location.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        retired = retire_customer_state(folder)
        if retired is not None:
            log.warning(
                "the checkpoint held the customer state of the earlier, stateful scorer; moved it to %s "
                "(the customer windows now come from Postgres; delete that folder at will)",
                retired,
            )
    return (
        records.writeStream.queryName("score_transactions")
        .foreachBatch(scorer)
        .option("checkpointLocation", options.checkpoint_location)
        .trigger(processingTime=options.trigger_interval)
        .start()
    )


def session_conf(settings: Settings, options: ScorerOptions) -> dict[str, str]:
    conf = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        # a stateless query has nothing to do in an empty micro-batch
        "spark.sql.streaming.noDataMicroBatches.enabled": "false",
    }
    if options.ui_port is None:
        conf["spark.ui.enabled"] = "false"
    else:
        conf["spark.ui.port"] = str(options.ui_port)
    if options.checkpoint_location.startswith("s3a://"):
        conf.update(s3a_conf(settings))
    return conf


def s3a_conf(settings: Settings) -> dict[str, str]:
    """Hadoop S3A settings for the stack's object store (MinIO: path-style, its own endpoint), without its
    keys: a session's configuration reaches the JVM's command line, where any local user reads it; the keys
    go to the running session instead (:func:`set_s3a_keys`).

    Needs hadoop-aws on the class path (``spark-jobs/pom.xml`` profile ``s3a``, in the compose image).
    """
    from fraudops.storage import S3_REGION

    endpoint = settings.s3_endpoint_url
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": S3_REGION,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https://")).lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
    }


def set_s3a_keys(spark: Any, secrets: Mapping[str, str]) -> None:
    """The object store's keys on the running session's Hadoop configuration, which the checkpoint file
    system reads when the query starts (only the driver writes checkpoints)."""
    from fraudops.storage import credentials

    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    # the scorer's own MinIO user: its checkpoint prefix only (fraudops.storage.component_policy)
    access, secret = credentials(secrets, "scorer")
    hadoop.set("fs.s3a.access.key", access)
    hadoop.set("fs.s3a.secret.key", secret)


def record_lag(query: Any, metrics: Any) -> None:
    """The consumer lag per partition from the query's last progress (what Spark read up to, against the
    latest offsets its Kafka source saw)."""
    from fraudops.monitoring.metrics import partition_lag

    progress = query.lastProgress
    if progress is None:
        return
    sources = progress["sources"] if isinstance(progress, dict) else progress.sources
    metrics.record_lag(partition_lag(sources))


def log_progress(query: Any, after_batch: int) -> int:
    """Spark's own timings of the micro-batches since ``after_batch`` (offset log, the foreachBatch body,
    commit log), one log line each, for the stage breakdown of `make bench-stream`; the last batch id."""
    for progress in query.recentProgress:
        if progress.batchId > after_batch:
            log.info(
                "progress %s",
                json.dumps(
                    {"batch_id": progress.batchId, "rows": progress.numInputRows, "ms": progress.durationMs}
                ),
            )
            after_batch = progress.batchId
    return after_batch


def retire_customer_state(checkpoint: Path) -> Path | None:
    """Move the state store of the earlier scorer (customer windows in Spark state) out of a checkpoint.

    Spark refuses to resume a stateless query from a checkpoint with state metadata; the offsets and the
    commit log stay, so the scorer resumes where it stopped, and the windows come from Postgres now.
    Returns where the state went, or None when there was none.
    """
    state = checkpoint / "state"
    if not state.is_dir():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = checkpoint.with_name(f"{checkpoint.name}.customer-state-{stamp}")
    state.rename(target)
    return target


class ScorerFailed(RuntimeError):
    """The streaming query stopped with an error."""


_OLD_STATE_ERRORS = (
    "STATE_STORE_VALUE_SCHEMA_NOT_COMPATIBLE",
    "STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE",
    "STREAMING_STATEFUL_OPERATOR_NOT_MATCH_IN_STATE_METADATA",
)


def failure_message(error: str, checkpoint: str) -> str:
    if any(code in error for code in _OLD_STATE_ERRORS):
        # a checkpoint of the earlier, stateful scorer on object storage (a local one is mended at start)
        return (
            f"the checkpoint {checkpoint} holds customer state of an older scorer; stop the scorer, move its "
            "`state` folder out of the checkpoint and start again (it resumes from the checkpoint's offsets; "
            f"the customer windows come from Postgres). Spark said: {error.splitlines()[0]}"
        )
    return f"scorer query failed: {error}"


def run(settings: Settings, options: ScorerOptions, secrets: Mapping[str, str]) -> None:
    """Run the scorer until SIGTERM/SIGINT (graceful: the current micro-batch finishes)."""
    from pyspark.errors import StreamingQueryException

    from fraudops.spark import build_session
    from fraudops.tracking import use_account

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the driver follows the champion in MLflow as the read-only account (it never writes there)
    use_account(secrets, "reader")
    # fail fast when MLflow is down, so the last-known-good copy takes over instead of minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    metrics = None
    if options.metrics_port is not None:
        from fraudops.monitoring.metrics import ScorerMetrics, serve

        metrics = ScorerMetrics()
        try:
            serve(metrics.registry, settings.stack.host, options.metrics_port)
        except OSError as exc:  # metrics are for people; scoring goes on without them
            log.warning("no /metrics: port %s: %s", options.metrics_port, exc)
    watcher, scorer = build_scorer(settings, options, metrics)
    spark = build_session(settings, "score_transactions", **session_conf(settings, options))
    spark.sparkContext.setLogLevel("WARN")
    if options.checkpoint_location.startswith("s3a://"):
        set_s3a_keys(spark, secrets)
    query = start_query(spark, settings, options, scorer)
    log.info(
        "scoring %s -> %s with %s@%s; checkpoints %s; Spark application %s on %s",
        options.source_topic,
        options.predictions_topic,
        options.model_name,
        options.alias,
        options.checkpoint_location,
        spark.sparkContext.applicationId,
        spark.sparkContext.master,
    )
    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping after the current micro-batch", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logged = -1
    try:
        while not stopping.is_set() and query.isActive:
            query.awaitTermination(1)
            logged = log_progress(query, logged)
            if metrics is not None:
                record_lag(query, metrics)
        if query.exception() is not None:
            raise ScorerFailed(failure_message(str(query.exception()), options.checkpoint_location))
    except StreamingQueryException as exc:
        raise ScorerFailed(failure_message(str(exc), options.checkpoint_location)) from exc
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
