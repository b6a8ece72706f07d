"""Retraining pipeline commands: each step of the DAG by hand, the whole pipeline without Airflow, and the
registry operations people need (promote a version, roll back), plus the first-use bootstrap."""

from __future__ import annotations

import json
from typing import Any

import click


def _ctx() -> Any:
    from fraudops.context import Context

    return Context.load()


def _echo(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


def _cutoff(value: str | None) -> Any:
    from fraudops.pipeline import resolve_cutoff

    return resolve_cutoff(value)


cutoff_option = click.option("--cutoff", help="Cutoff time (UTC, ISO-8601) [default: now].")
run_key_option = click.option("--run-key", default="manual", show_default=True, help="Names the lake folder.")


@click.group("pipeline")
def pipeline_group() -> None:
    """The retraining pipeline's steps (what the fraud_retraining DAG runs)."""


@pipeline_group.command("extract")
@cutoff_option
@run_key_option
@click.option("--window-days", type=int, help="[default: pipeline.window_days]")
@click.option("--source-uri", help="Use this lake snapshot instead of the database.")
def extract_cmd(cutoff: str | None, run_key: str, window_days: int | None, source_uri: str | None) -> None:
    """Transactions and labels known at the cutoff -> a Parquet snapshot in the lake; prints its URI."""
    from fraudops import pipeline

    ctx = _ctx()
    days = window_days or ctx.settings.pipeline.window_days
    click.echo(pipeline.extract(ctx, _cutoff(cutoff), days, run_key, source_uri))


@pipeline_group.command("validate")
@click.argument("snapshot_uri")
@cutoff_option
@run_key_option
def validate_cmd(snapshot_uri: str, cutoff: str | None, run_key: str) -> None:
    """Run the Great Expectations suite on a snapshot (exit 1 on failure); Data Docs go to MLflow."""
    from fraudops import pipeline
    from fraudops.validation import DataValidationError

    try:
        _echo(pipeline.validate(_ctx(), snapshot_uri, _cutoff(cutoff), run_key))
    except DataValidationError as exc:
        raise click.ClickException(str(exc)) from exc


@pipeline_group.command("features")
@click.argument("snapshot_uri")
@run_key_option
def features_cmd(snapshot_uri: str, run_key: str) -> None:
    """Build the features of a snapshot; prints the features URI."""
    from fraudops import pipeline

    click.echo(pipeline.build_feature_snapshot(_ctx(), snapshot_uri, run_key))


@pipeline_group.command("train")
@click.argument("features_uri")
@click.option("--family", required=True, type=click.Choice(["xgboost", "catboost"]))
@cutoff_option
@run_key_option
@click.option(
    "--overrides", default="{}", help='Model settings as JSON, e.g. \'{"xgboost": {"max_depth": 4}}\'.'
)
def train_cmd(features_uri: str, family: str, cutoff: str | None, run_key: str, overrides: str) -> None:
    """Train and register one family (a re-run with the same run key reuses its version)."""
    from fraudops import pipeline

    _echo(pipeline.train(_ctx(), features_uri, family, run_key, _cutoff(cutoff), json.loads(overrides)))


@pipeline_group.command("run")
@cutoff_option
@run_key_option
@click.option("--family", "families", multiple=True, type=click.Choice(["xgboost", "catboost"]))
@click.option("--dry-run", is_flag=True, help="Decide, record, but move no alias.")
@click.option(
    "--force", is_flag=True, help="Promote the best candidate even if it does not beat the champion."
)
def run_cmd(cutoff: str | None, run_key: str, families: tuple[str, ...], dry_run: bool, force: bool) -> None:
    """The whole pipeline in this process, without Airflow (the DAG's steps, in its order)."""
    from fraudops import pipeline

    ctx = _ctx()
    params = pipeline.RunParams.of(ctx.settings, cutoff, families=families, dry_run=dry_run, force=force)
    _echo(pipeline.run_all(ctx, params, run_key))


@click.command("promote")
@click.option("--version", required=True, help="The model version to make @champion.")
@click.option("--reason", default="manual promotion", show_default=True)
def promote_command(version: str, reason: str) -> None:
    """Make VERSION the champion (the old one becomes @previous) and signal the scorers."""
    from fraudops import pipeline
    from fraudops.registry import NoSuchVersion

    try:
        _echo(pipeline.promote_version(_ctx(), version, reason))
    except NoSuchVersion as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("rollback")
def rollback_command() -> None:
    """Make @previous the champion again and signal the scorers."""
    from fraudops import pipeline

    try:
        _echo(pipeline.rollback(_ctx()))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("bootstrap")
@click.option("--days", type=int, help="Days of history up to today [default: simulator.n_days].")
@click.option("--customers", type=int, help="[default: simulator.n_customers]")
@click.option("--terminals", type=int, help="[default: simulator.n_terminals]")
@click.option("--seed", type=int, help="[default: simulator.seed]")
def bootstrap_command(
    days: int | None, customers: int | None, terminals: int | None, seed: int | None
) -> None:
    """First use: fill the fraud database with simulated history ending today, with delayed labels."""
    import time

    from fraudops.history import load_simulated_history, world_ending_today

    ctx = _ctx()
    world = ctx.settings.simulator.model_copy(
        update={
            k: v for k, v in {"n_customers": customers, "n_terminals": terminals, "seed": seed}.items() if v
        }
    )
    world = world_ending_today(world, days or world.n_days)
    started = time.perf_counter()
    new_tx, new_labels = load_simulated_history(world, ctx.producer_dsn, progress=True)
    click.echo(
        f"history from {world.start_date} ({world.n_days} days): {new_tx:,} new transactions, "
        f"{new_labels:,} new labels in {time.perf_counter() - started:.0f} s"
    )
