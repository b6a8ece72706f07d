"""`make demo`: the whole loop on the native stack, with progress a person can follow."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from fraudops import fraud_db
from fraudops.airflow_api import AirflowApi
from fraudops.config.settings import load_settings
from fraudops.context import Context
from fraudops.history import load_simulated_history, next_stream_start, world_ending_today
from fraudops.stack.manager import Stack, format_status, format_urls
from fraudops.stack.services import venv_bin

DAG_ID = "fraud_retraining"


def step(number: int, title: str) -> None:
    click.secho(f"\n[{number}] {title}", fg="cyan", bold=True)


def _timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    return action(), time.monotonic() - started


def ensure_history(ctx: Context) -> None:
    recent, newest = fraud_db.recent_history(ctx.producer_dsn, days=2)
    if recent >= 1000:
        click.echo(f"    the fraud database already holds recent history (newest transaction {newest})")
        return
    world = world_ending_today(ctx.settings.simulator, ctx.settings.simulator.n_days)
    click.echo(f"    simulating {world.n_days} days for {world.n_customers:,} customers up to today")
    (added, _), took = _timed(lambda: load_simulated_history(world, ctx.producer_dsn, progress=True))
    click.echo(f"    loaded {added:,} transactions with their delayed labels in {took:.0f} s")


def retrain(api: AirflowApi, ctx: Context, conf: dict[str, Any], why: str) -> dict[str, Any]:
    run_id = api.trigger(DAG_ID, conf)
    click.echo(f"    triggered {DAG_ID} ({why}): run {run_id}")
    click.echo(f"    follow it at {ctx.settings.airflow_url}/dags/{DAG_ID}/runs/{run_id}")
    started = time.monotonic()
    seen: dict[tuple[str, int], str] = {}
    while True:
        for ti in api.task_instances(DAG_ID, run_id):
            key = (ti["task_id"], ti["map_index"])
            if ti["state"] and seen.get(key) != ti["state"]:
                seen[key] = ti["state"]
                label = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
                click.echo(f"    {time.monotonic() - started:6.0f} s  {label:<16} {ti['state']}")
        state = api.run_state(DAG_ID, run_id)
        if state in ("success", "failed"):
            break
        time.sleep(3)
    if state != "success":
        raise click.ClickException(f"retraining run {run_id} {state}: see the Airflow UI")
    decision = api.xcom(DAG_ID, run_id, "evaluate")
    promotion = api.xcom(DAG_ID, run_id, "promote")
    click.echo(f"    done in {time.monotonic() - started:.0f} s: {decision['reason']}")
    return promotion


def run_demo(live_seconds: float = 60, after_swap_seconds: float = 15) -> None:
    """Every step of the loop; ``live_seconds`` of scoring before the second retraining and
    ``after_swap_seconds`` after the scorer took the new version (CI runs a shorter profile)."""
    stack = Stack(load_settings(), log=lambda line: click.echo(f"    {line}"))

    step(1, "Bringing the stack up (installs what is missing on first use)")
    stack.up()  # generates the secrets on a fresh clone, so the context is loaded after it
    # the demo only reads the registry (the DAG trains and promotes): MLflow's read-only account
    ctx = Context.load(mlflow_account="reader")

    step(2, "Loading transaction history into the fraud database")
    ensure_history(ctx)

    step(3, "Retraining through Airflow (extract -> validate -> features -> train -> evaluate -> promote)")
    api = AirflowApi(ctx.settings, ctx.secrets)
    api.wait_for_dag(DAG_ID)
    api.wait_until_idle(DAG_ID)  # a scheduled run may be under way
    retrain(api, ctx, {}, "first training")
    champion = ctx.registry.champion()
    if champion is None:
        raise click.ClickException(
            "no champion after the first retraining: see model_metadata and the DAG logs"
        )
    alias = ctx.registry.champion_alias
    click.echo(f"    {ctx.model_name}@{alias} = v{champion.version} ({champion.family})")

    step(4, "Starting the Spark Structured Streaming scorer and a live producer")
    stack.start(["spark-scorer"])
    since = _now(ctx)
    producer = _start_producer(ctx, stack)
    try:
        click.echo(
            "    transactions flow: producer -> Kafka transactions_stream -> scorer -> predictions, alerts"
        )
        _watch_scoring(ctx, since, seconds=live_seconds)

        step(5, "Retraining again (force: the best candidate is promoted if it clears the gates)")
        promotion = retrain(api, ctx, {"force": True}, "second training")
        if not (promotion.get("promoted") and promotion.get("changed")):
            raise click.ClickException(
                f"the second retraining promoted no new version ({promotion.get('reason')}), so the scorer "
                f"cannot show a swap: it keeps v{champion.version}; see model_metadata and the DAG run"
            )
        click.echo(f"    promoted v{promotion['version']}; the scorer reloads between micro-batches")
        _wait_for_version(ctx, since, str(promotion["version"]))
        _watch_scoring(ctx, since, seconds=after_swap_seconds)
    finally:
        producer.terminate()  # the producer stores the labels it still held back (available later)
        producer.wait(60)

    step(6, "What happened, and where to look")
    click.echo(format_summary(_live_summary(ctx, since)))
    click.echo("")
    click.echo(format_status(stack.status()))
    click.echo("")
    click.echo(format_urls(ctx.settings))
    click.echo(
        "\nThe scorer keeps running (`make status`); stop it with `fraudops stack down spark-scorer`, "
        "the stack with `make down`."
    )


@dataclass(frozen=True)
class LiveSummary:
    """What the live part of the demo did, read back from the fraud database."""

    scored_by_version: dict[str, int]
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    alerts: dict[str, int]
    labels: int
    labels_known_from: Any


def _reader(ctx: Context) -> str:
    """What the demo reports is read as the analyst console's role: scores, alerts and labels, as an
    analyst sees them (the demo writes nothing there)."""
    from fraudops.connections import console_dsn

    return console_dsn(ctx.settings, ctx.secrets)


def _live_summary(ctx: Context, since: Any) -> LiveSummary:
    dsn = _reader(ctx)
    by_version: dict[str, int] = {}
    for (version, _), n in fraud_db.scored_since(dsn, since).items():
        by_version[version] = by_version.get(version, 0) + n
    p50, p99 = fraud_db.latency_percentiles_ms(dsn, since)
    labels, known_from = fraud_db.labels_since(dsn, since)
    return LiveSummary(by_version, p50, p99, fraud_db.alerts_since(dsn, since), labels, known_from)


def format_summary(summary: LiveSummary) -> str:
    def version_key(item: tuple[str, int]) -> tuple[int, str]:
        return (int(item[0]) if item[0].isdigit() else -1, item[0])

    scored = ", ".join(f"v{v}: {n:,}" for v, n in sorted(summary.scored_by_version.items(), key=version_key))
    latency = (
        f"p50 {summary.latency_p50_ms:,.0f} ms, p99 {summary.latency_p99_ms:,.0f} ms"
        if summary.latency_p50_ms is not None
        else "no transaction scored"
    )
    alerts = ", ".join(f"{d} {n:,}" for d, n in sorted(summary.alerts.items())) or "none"
    labels = f"{summary.labels:,} delayed labels stored for the streamed transactions"
    if summary.labels:
        known = f"{summary.labels_known_from:%Y-%m-%d %H:%M} UTC"
        labels += f" (known from {known} on, the label delay; retrainings after that learn from them)"
    return "\n".join(
        [
            f"    transactions scored, by model version: {scored or 'none'}",
            f"    end-to-end latency (sent -> scored in Postgres): {latency}",
            f"    alerts raised: {alerts}",
            f"    {labels}",
        ]
    )


def _now(ctx: Context) -> Any:
    return fraud_db.database_now(_reader(ctx))


def _start_producer(ctx: Context, stack: Stack) -> subprocess.Popen:
    log_path = stack.layout.log_of("demo-producer")
    log_file = log_path.open("ab")
    start = next_stream_start(ctx.settings.simulator, ctx.producer_dsn)
    click.echo(f"    producer: 20 transactions/s, wall-clock event time (log: {log_path})")
    return subprocess.Popen(
        [
            venv_bin("fraudops"),
            "produce",
            "--rate",
            "20",
            "--clock",
            "wallclock",
            "--duration",
            "3600",
            "--start",
            start.strftime("%Y-%m-%d"),
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=ctx.settings.project_root,
    )


def _scoring_summary(ctx: Context, since: Any) -> tuple[dict[tuple[str, str], int], int]:
    dsn = _reader(ctx)
    return fraud_db.scored_since(dsn, since), sum(fraud_db.alerts_since(dsn, since).values())


def _watch_scoring(ctx: Context, since: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(10)
        scored, alerts = _scoring_summary(ctx, since)
        per_version: dict[str, dict[str, int]] = {}
        for (version, decision), n in scored.items():
            per_version.setdefault(version, {})[decision] = n
        text = "; ".join(
            f"v{v}: " + ", ".join(f"{d} {n}" for d, n in sorted(ds.items()))
            for v, ds in sorted(per_version.items())
        )
        click.echo(f"    scored so far: {text or 'waiting for the first micro-batch'} | alerts {alerts}")


def _wait_for_version(ctx: Context, since: Any, version: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scored, _ = _scoring_summary(ctx, since)
        if any(v == version for v, _ in scored):
            click.echo(f"    predictions now carry model version {version}")
            return
        time.sleep(5)
    raise click.ClickException(
        f"the scorer did not take v{version} within {timeout:.0f} s: `make logs S=spark-scorer`"
    )
