"""The scorer as a service of the native stack: it exports its metrics to Prometheus, a crash is
restarted with backoff, and `make status` tells a crashed or dead scorer from one that was never
started."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from click.testing import CliRunner
from scorer_metrics_support import check_scorer_metrics
from scorer_support import create_topics, delete_model, delete_topics, register_version, unique

from fraudops.cli import main
from fraudops.stack import process
from fraudops.stack.manager import Stack
from fraudops.stack.supervise import read_state

SERVICE = "spark-scorer"


class ServiceUnderTest(NamedTuple):
    stack: Stack
    model: str
    version: str
    topic: str


@pytest.fixture
def isolated_service(running_stack, tmp_path, monkeypatch):
    """The real service definition, pointed at scratch topics, a throw-away model and its own
    checkpoints through the environment it inherits."""
    settings = running_stack.settings
    model = unique("it-svc")
    version = register_version(
        settings.mlflow_tracking_uri, model, seed=4, rounds=10, alias=settings.mlflow.champion_alias
    )
    topics = [unique("it-svc-tx"), unique("it-svc-pred"), unique("it-svc-dl")]
    create_topics(settings.kafka_bootstrap_servers, topics)
    for key, value in {
        "FRAUDOPS_MLFLOW__MODEL_NAME": model,
        "FRAUDOPS_SCORER__SOURCE_TOPIC": topics[0],
        "FRAUDOPS_SCORER__PREDICTIONS_TOPIC": topics[1],
        "FRAUDOPS_SCORER__DEAD_LETTERS_TOPIC": topics[2],
        "FRAUDOPS_SCORER__CHECKPOINT_DIR": str(tmp_path / "checkpoint"),
        "FRAUDOPS_SCORER__LAST_KNOWN_GOOD_DIR": str(tmp_path / "models"),
    }.items():
        monkeypatch.setenv(key, value)
    stack = running_stack.stack
    was_running = process.running_pid(stack.layout, SERVICE)
    if was_running:
        pytest.skip("the stack's own scorer is running; this test needs the service to itself")
    try:
        yield ServiceUnderTest(stack, model, version, topics[0])
    finally:
        stack.down([SERVICE])
        delete_topics(settings.kafka_bootstrap_servers, topics)
        delete_model(settings.mlflow_tracking_uri, model)


def _no_secret_in_the_environment_of_the_scorer(running_stack, stack) -> None:
    """The supervisor, the Python driver and its Spark JVM inherit no secret: the driver reads env/ itself
    and hands Spark its S3A keys in-process."""
    values = [v for k, v in running_stack.secrets.items() if re.search(r"PASSWORD|SECRET|_KEY$", k) and v]
    family = process.descendants({process.running_pid(stack.layout, SERVICE)})
    lines = process.command_lines()
    assert any("java" in lines.get(pid, "") for pid in family), "no Spark JVM under the scorer's supervisor"
    environs = [process.environ_of(pid) or {} for pid in family]
    assert all(not any(v in "\n".join(env.values()) for v in values) for env in environs)
    assert any(env.get("PYTHONUNBUFFERED") == "1" for env in environs), "the environments were not read"


def _status_row(stack):
    return next(r for r in stack.status() if r.name == SERVICE)


def test_metrics_then_a_crash_restarted_and_a_dead_one_reported(running_stack, isolated_service) -> None:
    stack = isolated_service.stack
    state_file = stack.layout.supervisor_state_of(SERVICE)
    stack.start([SERVICE])
    first = read_state(state_file)
    assert first is not None and first.state == "running" and first.crashes == 0
    assert _status_row(stack).health.ok
    # one scorer start serves both checks (a start costs most of a minute)
    check_scorer_metrics(running_stack, *isolated_service[1:])
    _no_secret_in_the_environment_of_the_scorer(running_stack, stack)

    os.kill(first.child_pid, signal.SIGKILL)  # the scorer itself dies; its supervisor stays
    deadline, seen_crash_in_status = time.monotonic() + 240, False
    while time.monotonic() < deadline:
        row, state = _status_row(stack), read_state(state_file)
        seen_crash_in_status |= (not row.health.ok) and "crashed 1x" in row.health.detail
        if state and state.crashes == 1 and state.state == "running" and row.health.ok:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"not restarted: {read_state(state_file)}")
    assert seen_crash_in_status, "status showed the crash while the scorer came back"
    assert read_state(state_file).child_pid != first.child_pid
    assert read_state(state_file).last_exit_code == -signal.SIGKILL

    # the whole service killed, supervisor included: status says it failed and exits non-zero
    supervisor = process.running_pid(stack.layout, SERVICE)
    os.killpg(supervisor, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while process.running_pid(stack.layout, SERVICE) and time.monotonic() < deadline:
        time.sleep(0.2)
    row = _status_row(stack)
    assert row.died and not row.acceptable and row.health.detail.startswith("died")
    result = CliRunner().invoke(main, ["stack", "status"])
    assert result.exit_code == 1 and "FAILED" in result.output
    assert Path(stack.layout.pid_of(SERVICE)).exists()
