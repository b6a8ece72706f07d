"""The ``fraudops`` command: every pipeline step and stack operation is a subcommand.

Each command group lives beside its domain module and imports heavy libraries inside its commands, so
``fraudops --help`` stays fast.
"""

from __future__ import annotations

import click

from fraudops.commands.model import (
    build_features_command,
    evaluate_command,
    import_transactions_command,
    simulate_command,
    simulate_stream_command,
    train_command,
)
from fraudops.commands.monitor import drift_command, monitor_group
from fraudops.commands.pipeline import bootstrap_command, pipeline_group, promote_command, rollback_command
from fraudops.commands.stream import produce_command, score_command
from fraudops.console.cli import console_group
from fraudops.containers.cli import compose_group
from fraudops.stack.cli import kafka_group, stack_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Real-time card-fraud detection platform."""


main.add_command(stack_group)
main.add_command(kafka_group)
main.add_command(compose_group)
main.add_command(simulate_command)
main.add_command(simulate_stream_command)
main.add_command(import_transactions_command)
main.add_command(build_features_command)
main.add_command(train_command)
main.add_command(evaluate_command)
main.add_command(pipeline_group)
main.add_command(promote_command)
main.add_command(rollback_command)
main.add_command(bootstrap_command)
main.add_command(produce_command)
main.add_command(score_command)
main.add_command(drift_command)
main.add_command(monitor_group)
main.add_command(console_group)


@main.command("demo")
@click.option(
    "--live-seconds",
    type=float,
    default=60,
    show_default=True,
    help="Live scoring before the second retraining.",
)
@click.option(
    "--after-swap-seconds",
    type=float,
    default=15,
    show_default=True,
    help="Live scoring after the scorer took the new version.",
)
def demo_command(live_seconds: float, after_swap_seconds: float) -> None:
    """The main job: stack up, history, retraining through Airflow, scoring, a second retraining."""
    from fraudops.demo import run_demo

    run_demo(live_seconds, after_swap_seconds)
