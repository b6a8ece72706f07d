"""The compose tier: the platform's images built and run in containers (`make compose-test`).

The session starts a Docker engine when none answers (and stops it at the end), builds every image, and
brings the stack up under its own compose project, so a user's compose stack and its volumes are left alone;
at the end it removes its containers and volumes. FRAUDOPS_COMPOSE_KEEP=1 leaves them up for a look.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from fraudops.config.settings import Settings, load_settings
from fraudops.containers.compose import Compose, state_dir
from fraudops.containers.engine import ensure_engine, stop_engine
from fraudops.context import Context
from fraudops.secrets import ensure_secrets, load_secrets, write_component_secrets

PROJECT = "fraudops-compose-test"


@dataclass(frozen=True)
class ComposeStack:
    settings: Settings
    compose: Compose
    ctx: Context


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/compose" in str(item.fspath):
            item.add_marker(pytest.mark.compose)


@pytest.fixture(scope="session")
def compose_stack() -> Iterator[ComposeStack]:
    base = load_settings()
    settings = base.model_copy(update={"docker": base.docker.model_copy(update={"project": PROJECT})})
    started_engine = ensure_engine(state_dir(settings))
    ensure_secrets(settings.env_dir)
    # each container mounts its own component's file (docker-compose.yaml)
    write_component_secrets(settings.env_dir)
    compose = Compose(settings)
    compose.down(volumes=True)  # what an earlier, interrupted session left
    compose.build()
    compose.up()
    compose.wait_ready(timeout=900)
    try:
        yield ComposeStack(settings, compose, Context.of(settings, load_secrets(settings.env_dir)))
    finally:
        if os.environ.get("FRAUDOPS_COMPOSE_KEEP") != "1":
            compose.down(volumes=True)
            if started_engine:
                stop_engine(state_dir(settings))
