"""Streaming commands: `fraudops produce` (events into Kafka, labels into Postgres) and `fraudops score`
(the Spark Structured Streaming scorer)."""

from __future__ import annotations

import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click

from fraudops.commands.model import score_file, tracking_option
from fraudops.config.model import LABEL_DELAY_DAYS


def _settings():  # type: ignore[no-untyped-def]
    from fraudops.config.settings import load_settings

    return load_settings()


def _progress_printer(total: int | None):  # type: ignore[no-untyped-def]
    tty = sys.stderr.isatty()

    def show(stats) -> None:  # type: ignore[no-untyped-def]
        of = f"/{total:,}" if total else ""
        when = stats.last_event.isoformat(sep=" ", timespec="seconds") if stats.last_event else "-"
        line = (
            f"sent {stats.sent:,}{of}  acked {stats.acked:,}  failed {stats.failed:,}  "
            f"{stats.rate:,.0f}/s  labels {stats.labels_written:,}  event time {when}"
        )
        click.echo(("\r" + line) if tty else line, err=True, nl=not tty)

    return show


def _with_metrics(show, host: str, port: int):  # type: ignore[no-untyped-def]
    """``show`` that also moves the producer's Prometheus counters, served on host:port."""
    from fraudops.monitoring.metrics import ProducerMetrics, serve

    metrics = ProducerMetrics()
    try:
        serve(metrics.registry, host, port)
    except OSError as exc:  # another producer holds the port: stream without metrics
        click.echo(f"no /metrics on port {port}: {exc}", err=True)
        return show

    def both(stats) -> None:  # type: ignore[no-untyped-def]
        metrics.update(stats.sent, stats.acked, stats.failed, stats.labels_written)
        show(stats)

    return both


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@click.command("produce")
@click.option("--rate", type=float, default=100.0, show_default=True, help="Events per second (0: unpaced).")
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--limit", type=int, help="Stop after this many events.")
@click.option(
    "--clock",
    type=click.Choice(["simulated", "wallclock"]),
    default="wallclock",
    show_default=True,
    help="Stamp events with the time they are sent (live traffic), or keep the simulated event time (a "
    "replay: the scorer dead-letters events outside its event-time window, scorer.max_event_*).",
)
@click.option("--start", type=click.DateTime(), help="Simulated start [default: the day after the history].")
@click.option("--file", "file_", type=click.Path(exists=True, path_type=Path), help="Parquet file to replay.")
@click.option("--topic", help="Target topic [default: scorer.source_topic].")
@click.option(
    "--labels/--no-labels", default=True, show_default=True, help="Delayed label feed to fraud_labels."
)
@click.option(
    "--label-delay-hours",
    type=float,
    default=24 * LABEL_DELAY_DAYS,
    show_default=True,
    help="When each label reaches fraud_labels [default: the label delay].",
)
@click.option(
    "--metrics-port",
    type=int,
    help="Prometheus /metrics port [default: stack.ports.producer_metrics; 0: none].",
)
def produce_command(
    rate: float,
    duration: float | None,
    limit: int | None,
    clock: str,
    start: datetime | None,
    file_: Path | None,
    topic: str | None,
    labels: bool,
    label_delay_hours: float,
    metrics_port: int | None,
) -> None:
    """Stream transactions into Kafka (acks=all, idempotent) with the delayed label feed."""
    from fraudops.kafka_client import kafka_producer
    from fraudops.producer import file_stream, label_writer, produce, simulated_stream

    settings = _settings()
    if duration is None and limit is None and file_ is None:
        click.echo("streaming until interrupted (Ctrl-C); --duration or --limit to stop", err=True)
    source = file_stream(str(file_)) if file_ else simulated_stream(settings, start, clock)
    write = None
    if labels:
        from fraudops.connections import producer_dsn
        from fraudops.fraud_db import require_tables
        from fraudops.secrets import load_secrets

        # its role creates nothing: the init step (`make up`, compose's postgres-init) made the table
        dsn = producer_dsn(settings, load_secrets(settings.env_dir))
        require_tables(dsn, ["fraud_labels"])
        write = label_writer(dsn)
    target = topic or settings.scorer.source_topic
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    # a service manager stops us with SIGTERM: end like Ctrl-C, delivering what was sent and its labels
    signal.signal(signal.SIGTERM, _interrupt)
    progress = _progress_printer(limit)
    port = settings.stack.ports.producer_metrics if metrics_port is None else metrics_port
    if port:
        progress = _with_metrics(progress, settings.stack.host, port)
    try:
        stats = produce(
            source,
            producer,
            target,
            rate=rate or None,
            limit=limit,
            duration_s=duration,
            write_labels=write,
            label_delay=timedelta(hours=label_delay_hours),
            wallclock_labels=clock == "wallclock",
            progress=progress,
        )
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    click.echo("", err=True)
    click.echo(
        f"{stats.acked:,} of {stats.sent:,} events acknowledged on {target} in {stats.elapsed_s:.1f} s "
        f"({stats.rate:,.0f}/s); {stats.labels_written:,} labels written"
    )
    if stats.failed:
        raise click.ClickException(f"{stats.failed} events not acknowledged: {stats.errors[:3]}")


@click.command("score")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("scores.parquet"),
    show_default=True,
    help="With FILE: Parquet file of per-transaction scores and decisions.",
)
@click.option(
    "--model-uri",
    help="With FILE: the model to score with, e.g. models:/fraud-detector/3 or runs:/<run id>/model "
    "[default: models:/<model name>@<alias>].",
)
@tracking_option
@click.option("--model-name", help="Registered model to follow [default: mlflow.model_name].")
@click.option("--alias", help="Alias to follow [default: mlflow.champion_alias].")
@click.option("--topic", "source_topic", help="Source topic [default: scorer.source_topic].")
@click.option("--predictions-topic", help="[default: scorer.predictions_topic]")
@click.option("--dead-letters-topic", help="[default: scorer.dead_letters_topic]")
@click.option(
    "--checkpoint",
    "checkpoint_location",
    help="Folder or s3a:// URI of the checkpoints [default: scorer.checkpoint_dir, in the data dir].",
)
@click.option(
    "--models-dir", "last_known_good_dir", type=click.Path(path_type=Path), help="Last-known-good copies."
)
@click.option("--starting-offsets", type=click.Choice(["earliest", "latest"]), help="First start only.")
@click.option("--max-offsets-per-trigger", type=int)
@click.option("--trigger-interval", help="e.g. '1 second'")
@click.option("--poll-interval", "poll_interval_s", type=float, help="Seconds between alias checks.")
@click.option("--ui-port", type=int, help="Spark UI port [default: stack.ports.spark_ui].")
@click.option(
    "--metrics-port", type=int, help="Prometheus /metrics port [default: stack.ports.scorer_metrics]."
)
@click.option("--no-ui", is_flag=True, help="No Spark UI and no /metrics (tests, benchmarks).")
def score_command(  # type: ignore[no-untyped-def]
    file: Path | None,
    out: Path,
    model_uri: str | None,
    tracking_uri: str | None,
    no_ui: bool,
    **overrides,
) -> None:
    """Score FILE (transactions or features, Parquet) into --out, one row per transaction; without FILE,
    run the Spark Structured Streaming scorer until SIGTERM / Ctrl-C."""
    settings = _settings()
    if file is not None:
        name = overrides["model_name"] or settings.mlflow.model_name
        uri = model_uri or f"models:/{name}@{overrides['alias'] or settings.mlflow.champion_alias}"
        frame = score_file(file, out, uri, tracking_uri, settings)
        flagged = int((frame["decision"] != "APPROVE").sum())
        click.echo(
            f"{len(frame):,} transactions scored by {uri}, {flagged:,} flagged -> {settings.path(out)}"
        )
        return
    from dataclasses import replace

    from fraudops.connections import scorer_dsn
    from fraudops.scoring.job import ScorerFailed, ScorerOptions, checkpoint_location, run
    from fraudops.secrets import load_secrets

    if overrides["checkpoint_location"]:
        overrides["checkpoint_location"] = checkpoint_location(Path.cwd(), overrides["checkpoint_location"])
    # read once: the scorer's database role and, with s3a:// checkpoints, its object store keys
    secrets = load_secrets(settings.env_dir)
    options = ScorerOptions.from_settings(settings, scorer_dsn(settings, secrets), **overrides)
    if no_ui:
        options = replace(options, ui_port=None, metrics_port=None)
    try:
        run(settings, options, secrets)
    except ScorerFailed as exc:
        raise click.ClickException(str(exc)) from exc
