"""Integration tests run against the real native stack. The session brings it up when it is not healthy
and stops at the end the services it started, so `pytest tests/integration` needs nothing started by hand."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest

from fraudops.config.settings import Settings, load_settings
from fraudops.fraud_db import fraud_dsn, training_data_fingerprint
from fraudops.secrets import load_secrets
from fraudops.stack import process
from fraudops.stack.manager import Stack

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class RunningStack:
    settings: Settings
    secrets: Mapping[str, str]
    stack: Stack


@pytest.fixture(scope="session")
def running_stack() -> Iterator[RunningStack]:
    settings = load_settings()
    stack = Stack(settings)
    running = {name for name in stack.services() if process.running_pid(stack.layout, name)}
    was_up = settings.env_dir.joinpath("postgres.env").exists() and all(r.acceptable for r in stack.status())
    if not was_up:
        stack.up()
    secrets = load_secrets(settings.env_dir)
    # module-wide fixtures too write to MLflow as the retraining pipeline (see mlflow_signed_in_as_pipeline)
    from fraudops.tracking import use_account

    use_account(secrets, "pipeline")
    yield RunningStack(settings, secrets, stack)
    # only what this session started: a stack that lacked one service (one added since it was brought
    # up, say) keeps the others running
    started = [name for name in stack.services() if name not in running]
    if not was_up and started:
        stack.down(started)


@pytest.fixture(scope="session", autouse=True)
def training_data_left_as_found(running_stack: RunningStack) -> Iterator[None]:
    """Every test removes what it wrote: the next retraining (and `make demo`) sees the same data."""
    dsn = fraud_dsn(running_stack.settings, running_stack.secrets)
    before = training_data_fingerprint(dsn)
    yield
    assert training_data_fingerprint(dsn) == before, "the tests changed the fraud database's training data"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def mlflow_signed_in_as_pipeline(running_stack: RunningStack) -> None:
    """Each test's MLflow calls sign in as the retraining pipeline (the account that writes runs and the
    registry), whatever a test before it chose (an in-process scorer signs in as the reader)."""
    from fraudops.tracking import use_account

    use_account(running_stack.secrets, "pipeline")


@pytest.fixture(scope="module", autouse=True)
def mlflow_signed_in_as_pipeline_per_module(running_stack: RunningStack) -> None:
    """The same for a module's own fixtures (autouse: set up before them)."""
    from fraudops.tracking import use_account

    use_account(running_stack.secrets, "pipeline")
