"""docker compose for the project: which compose program, its environment (the settings that reach the
compose file and the image builds), and the health of the project's containers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fraudops.config.settings import Settings
from fraudops.containers.base_image import ensure_base_image
from fraudops.containers.ca import CA_FOLDER, stage_ca_bundle

# the one-shot services: done when exited 0
ONE_SHOT = frozenset({"postgres-init", "minio-init", "kafka-init", "airflow-init", "mlflow-init"})


class ComposeError(RuntimeError):
    pass


@dataclass(frozen=True)
class ContainerState:
    service: str
    status: str  # created, running, restarting, exited, ...
    health: str | None  # healthy, unhealthy, starting; None without a healthcheck
    exit_code: int

    @property
    def ready(self) -> bool:
        if self.service in ONE_SHOT:
            return self.status == "exited" and self.exit_code == 0
        return self.status == "running" and self.health in (None, "healthy")

    @property
    def failed(self) -> bool:
        if self.service in ONE_SHOT:
            return self.status == "exited" and self.exit_code != 0
        return self.status == "exited" or self.health == "unhealthy"

    def describe(self) -> str:
        if self.status == "exited":
            return f"exited {self.exit_code}"
        return f"{self.status}" + (f" ({self.health})" if self.health else "")


def compose_program() -> list[str]:
    """``docker compose`` (v2) where the plugin is installed, else Debian's ``docker-compose`` (1.29)."""
    if shutil.which("docker") and (
        subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise ComposeError("neither `docker compose` nor `docker-compose` is installed (make bootstrap)")


def compose_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables docker-compose.yaml reads, from the settings, so that the compose stack and the
    `fraudops` clients on the host agree (ports) and the images get the pinned versions."""
    env = dict(os.environ if base is None else base)
    ports = settings.stack.ports
    env.update(
        {
            "COMPOSE_PROJECT_NAME": settings.docker.project,
            # containers run as the owner of env/ so that they can read its files (mode 600)
            "FRAUDOPS_UID": str(settings.env_dir.stat().st_uid),
            "FRAUDOPS_DOCKER__BASE_IMAGE": settings.docker.base_image,
            "FRAUDOPS_DOCKER__GO_VERSION": settings.docker.go_version,
            "FRAUDOPS_STACK__VERSIONS__MINIO": settings.stack.versions.minio,
            "FRAUDOPS_STACK__VERSIONS__STATSD_EXPORTER": settings.stack.versions.statsd_exporter,
            "FRAUDOPS_STACK__PORTS__POSTGRES": str(ports.postgres),
            "FRAUDOPS_STACK__PORTS__REDIS": str(ports.redis),
            "FRAUDOPS_STACK__PORTS__MINIO_API": str(ports.minio_api),
            "FRAUDOPS_STACK__PORTS__MINIO_CONSOLE": str(ports.minio_console),
            "FRAUDOPS_STACK__PORTS__MLFLOW": str(ports.mlflow),
            "FRAUDOPS_STACK__PORTS__CONSOLE": str(ports.console),
            "FRAUDOPS_STACK__PORTS__AIRFLOW": str(ports.airflow),
            "FRAUDOPS_STACK__PORTS__FLOWER": str(ports.flower),
            "FRAUDOPS_STACK__PORTS__SPARK_UI": str(ports.spark_ui),
            "FRAUDOPS_STACK__PORTS__SPARK_MASTER": str(ports.spark_master),
            "FRAUDOPS_STACK__PORTS__SPARK_MASTER_UI": str(ports.spark_master_ui),
            "FRAUDOPS_STACK__PORTS__PROMETHEUS": str(ports.prometheus),
            "FRAUDOPS_STACK__PORTS__ALERTMANAGER": str(ports.alertmanager),
            "FRAUDOPS_STACK__PORTS__POSTGRES_EXPORTER": str(ports.postgres_exporter),
            "FRAUDOPS_STACK__PORTS__REDIS_EXPORTER": str(ports.redis_exporter),
            "FRAUDOPS_STACK__PORTS__STATSD_EXPORTER": str(ports.statsd_exporter),
            "FRAUDOPS_STACK__PORTS__PLATFORM_EXPORTER": str(ports.platform_exporter),
            **{f"KAFKA_{n}_PORT": str(port) for n, port in enumerate(ports.kafka, start=1)},
        }
    )
    return env


def parse_inspect(documents: Sequence[Mapping]) -> list[ContainerState]:
    """Container states from ``docker inspect`` output (one document per container)."""
    states = []
    for doc in documents:
        state = doc.get("State", {})
        health = (state.get("Health") or {}).get("Status")
        service = (
            doc.get("Config", {}).get("Labels", {}).get("com.docker.compose.service", doc.get("Name", ""))
        )
        states.append(ContainerState(service, state.get("Status", ""), health, int(state.get("ExitCode", 0))))
    return sorted(states, key=lambda s: s.service)


class Compose:
    def __init__(self, settings: Settings, log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.log = log
        self.root = settings.project_root
        self.program = compose_program()
        self.env = compose_environment(settings)

    def run(self, *args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [
                *self.program,
                "--project-directory",
                str(self.root),
                "-f",
                str(self.root / "docker-compose.yaml"),
                *args,
            ],
            cwd=self.root,
            env=self.env,
            text=True,
            capture_output=capture,
        )
        if check and result.returncode != 0:
            raise ComposeError(f"`{' '.join(self.program)} {' '.join(args)}` exited {result.returncode}")
        return result

    def config(self) -> dict:
        """The compose file as compose resolves it (variables filled in), every profile included."""
        import yaml

        return yaml.safe_load(self.run("--profile", "scoring", "config", capture=True).stdout)

    def build(self) -> None:
        bundle = self.settings.docker.extra_ca_bundle
        staged = stage_ca_bundle(self.settings.path(bundle) if bundle else None, self.root / CA_FOLDER)
        if staged:
            self.log(f"trusting {staged} extra CA certificates from {bundle}")
        ensure_base_image(self.settings.docker.base_image, self.log)
        self.run("--profile", "scoring", "build")

    def up(self, services: Sequence[str] = (), profiles: Sequence[str] = ()) -> None:
        self.run(*[a for p in profiles for a in ("--profile", p)], "up", "-d", "--no-build", *services)

    def stop(self, services: Sequence[str] = ()) -> None:
        self.run("--profile", "scoring", "stop", *services)

    def down(self, volumes: bool = False) -> None:
        self.run("--profile", "scoring", "down", "--remove-orphans", *(["--volumes"] if volumes else []))

    def states(self) -> list[ContainerState]:
        ids = subprocess.run(
            [
                "docker",
                "ps",
                "-aq",
                "--filter",
                f"label=com.docker.compose.project={self.settings.docker.project}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if not ids:
            return []
        out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout
        return parse_inspect(json.loads(out))

    def wait_ready(
        self, services: Sequence[str] | None = None, timeout: float = 900.0
    ) -> list[ContainerState]:
        """Wait until every container (or those of ``services``) is ready: running and healthy, one-shots
        exited 0. Raises at the first failure or at the timeout, naming the containers."""
        deadline = time.monotonic() + timeout
        while True:
            states = [s for s in self.states() if services is None or s.service in services]
            failed = [s for s in states if s.failed]
            if failed:
                raise ComposeError("failed: " + ", ".join(f"{s.service} {s.describe()}" for s in failed))
            if states and all(s.ready for s in states):
                return states
            if time.monotonic() > deadline:
                waiting = [f"{s.service} {s.describe()}" for s in states if not s.ready]
                raise ComposeError(f"not ready after {timeout:.0f} s: {', '.join(waiting) or 'no container'}")
            time.sleep(3)

    def logs(self, service: str, tail: int = 50) -> str:
        return self.run("logs", "--no-color", "--tail", str(tail), service, check=False, capture=True).stdout


def state_dir(settings: Settings) -> Path:
    """Where the engine's log and marker live (beside the native stack's data)."""
    return settings.data_dir / "docker"
