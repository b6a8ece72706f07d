"""Secrets: generated on first start from the committed ``env/*.env.example`` files.

An example line ``KEY=<generate:token>`` becomes ``KEY=<random>`` in the git-ignored ``env/<name>.env``;
other lines are copied. An existing ``.env`` file is never overwritten, only completed with keys that a newer
example added, so data encrypted or protected with an old secret stays readable.

For the containers, ``env/components/<component>.env`` holds the keys of :data:`COMPONENT_SECRETS` of one
component only; docker-compose.yaml gives each container its own component's file and nothing else.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from fraudops.private_files import write_private

_GENERATE = re.compile(r"^<generate:(token|fernet)>$")
COMPONENTS_DIR = "components"

# what Airflow's servers read (fraudops.stack.airflow_env): metadata database, broker, keys, Flower's login
_AIRFLOW = (
    "AIRFLOW_DB_PASSWORD",
    "REDIS_PASSWORD",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "FLOWER_PASSWORD",
)
_MINIO_ROOT = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")
# MLflow's accounts (fraudops.tracking.ACCOUNTS)
_MLFLOW_ADMIN = ("MLFLOW_ADMIN_USER", "MLFLOW_ADMIN_PASSWORD")
_MLFLOW_PIPELINE = ("MLFLOW_PIPELINE_USER", "MLFLOW_PIPELINE_PASSWORD")
_MLFLOW_READER = ("MLFLOW_READER_USER", "MLFLOW_READER_PASSWORD")
_POSTGRES_SUPERUSER = ("POSTGRES_USER", "POSTGRES_PASSWORD")

# component -> the secret keys it needs, no more: the one table docker-compose.yaml follows (each service
# mounts env/components/<its component>.env; tests/unit/test_compose.py checks the mapping)
COMPONENT_SECRETS: dict[str, frozenset[str]] = {
    # the server initialises its cluster with the superuser's password (it keeps its hash and must check it)
    "postgres": frozenset(_POSTGRES_SUPERUSER),
    "redis": frozenset({"REDIS_PASSWORD"}),
    # MinIO administers its users and policies under the root account; the server cannot run without
    # knowing it. No client gets it but minio-init.
    "minio": frozenset(_MINIO_ROOT),
    # the only client with the superuser: creates the roles with their passwords, the databases and grants
    "postgres-init": frozenset(
        {
            *_POSTGRES_SUPERUSER,
            "AIRFLOW_DB_PASSWORD",
            "MLFLOW_DB_PASSWORD",
            "FRAUD_DB_PASSWORD",
            "SCORER_DB_PASSWORD",
            "PIPELINE_DB_PASSWORD",
            "PRODUCER_DB_PASSWORD",
            "MONITOR_DB_PASSWORD",
            "CONSOLE_DB_PASSWORD",
        }
    ),
    # the only client with the root key: creates the buckets, the component users and their policies
    "minio-init": frozenset(
        {
            *_MINIO_ROOT,
            *(f"MINIO_{c}_{k}" for c in ("MLFLOW", "PIPELINE", "SCORER") for k in ("USER", "SECRET_KEY")),
        }
    ),
    "kafka-init": frozenset(),
    # migrates the metadata database and sets the admin's password
    "airflow-init": frozenset({*_AIRFLOW, "AIRFLOW_ADMIN_PASSWORD"}),
    # api-server, scheduler, dag-processor, triggerer, Flower
    "airflow": frozenset(_AIRFLOW),
    # the tasks too: the retraining pipeline's Postgres role and MinIO user (fraudops.context), the drift
    # check's database role, and MLflow's pipeline account; the admin's password for the privileged-run
    # check (fraudops.run_access reads the triggering person's roles from FAB's user API, which FAB opens to
    # Admin only). The worker already holds Airflow's metadata database, so this widens nothing.
    "airflow-worker": frozenset(
        {
            *_AIRFLOW,
            "AIRFLOW_ADMIN_PASSWORD",
            "PIPELINE_DB_PASSWORD",
            "MINIO_PIPELINE_USER",
            "MINIO_PIPELINE_SECRET_KEY",
            *_MLFLOW_PIPELINE,
        }
    ),
    # the server creates its admin from these on first start; its Flask key signs the auth app's forms
    "mlflow": frozenset(
        {
            "MLFLOW_DB_PASSWORD",
            "MINIO_MLFLOW_USER",
            "MINIO_MLFLOW_SECRET_KEY",
            *_MLFLOW_ADMIN,
            "MLFLOW_FLASK_SERVER_SECRET_KEY",
        }
    ),
    # as the admin, creates the pipeline and reader accounts with their passwords and grants
    "mlflow-init": frozenset({*_MLFLOW_ADMIN, *_MLFLOW_PIPELINE, *_MLFLOW_READER}),
    "scorer": frozenset(
        {"SCORER_DB_PASSWORD", "MINIO_SCORER_USER", "MINIO_SCORER_SECRET_KEY", *_MLFLOW_READER}
    ),
    "console": frozenset({"CONSOLE_DB_PASSWORD", *_MLFLOW_READER}),
    # Flower's and MLflow's /metrics ask for a login
    "prometheus": frozenset({"FLOWER_PASSWORD", *_MLFLOW_READER}),
    "alertmanager": frozenset({"ALERT_WEBHOOK_URL"}),
    "postgres-exporter": frozenset({"MONITOR_DB_PASSWORD"}),
    "redis-exporter": frozenset({"REDIS_PASSWORD"}),
    "statsd-exporter": frozenset(),
    # reads the last DAG runs from Airflow's REST API (as its admin), drift reports as the monitor role, the
    # champion as MLflow's reader
    "platform-exporter": frozenset({"AIRFLOW_ADMIN_PASSWORD", "MONITOR_DB_PASSWORD", *_MLFLOW_READER}),
}


def _generate(kind: str) -> str:
    if kind == "fernet":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    # URL-safe and free of characters that need quoting in connection URLs or shells
    return secrets.token_hex(24)


def _fill(example: Path, target: Path) -> list[str]:
    """Write the keys of ``example`` that ``target`` lacks; return the names added."""
    existing = dotenv_values(target) if target.exists() else {}
    added: list[str] = []
    lines: list[str] = []
    for line in example.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, value = stripped.split("=", 1)
        if key in existing:
            continue
        match = _GENERATE.match(value)
        lines.append(f"{key}={_generate(match.group(1)) if match else value}")
        added.append(key)
    if lines:
        fresh = not target.exists()
        with target.open("a") as f:
            if fresh:
                f.write(f"# generated from {example.name}; keep private, never commit\n")
            f.write("\n".join(lines) + "\n")
        target.chmod(0o600)
    return added


def _env_files(env_dir: Path) -> list[tuple[Path, Path]]:
    """(committed example, generated file) pairs: ``env/<name>.env.example`` -> ``env/<name>.env``."""
    return [
        (example, example.with_name(example.name.removesuffix(".example")))
        for example in sorted(env_dir.glob("*.env.example"))
    ]


def secrets_generated(env_dir: Path) -> bool:
    """Whether every secrets file exists (the first `make up` or `make secrets` creates them)."""
    return all(target.exists() for _, target in _env_files(env_dir))


def ensure_secrets(env_dir: Path) -> dict[str, list[str]]:
    """Create or complete every ``env/<name>.env`` from its example. Returns the keys added per file."""
    report: dict[str, list[str]] = {}
    for example, target in _env_files(env_dir):
        added = _fill(example, target)
        if added:
            report[target.name] = added
    return report


def component_secrets(secrets: Mapping[str, str], component: str) -> dict[str, str]:
    """The secrets ``component`` needs, from all of them (a missing key fails: the table names a key no
    example defines)."""
    return {key: secrets[key] for key in sorted(COMPONENT_SECRETS[component])}


def component_file(env_dir: Path, component: str) -> Path:
    return env_dir / COMPONENTS_DIR / f"{component}.env"


def write_component_secrets(env_dir: Path) -> list[Path]:
    """``env/components/<component>.env`` (mode 600, git-ignored) for every component of
    :data:`COMPONENT_SECRETS`, from the generated ``env/*.env``; rewritten each time, so they follow them."""
    secrets = load_secrets(env_dir)
    folder = env_dir / COMPONENTS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    written = []
    for component in COMPONENT_SECRETS:
        path = component_file(env_dir, component)
        lines = [f"{key}={value}\n" for key, value in component_secrets(secrets, component).items()]
        header = f"# {component}'s secrets, from env/*.env (`make secrets`); keep private, never commit\n"
        write_private(path, header + "".join(lines))
        written.append(path)
    return written


def load_secrets(env_dir: Path) -> Mapping[str, str]:
    """All generated secrets, as one read-only mapping. Fails clearly when they were never generated.

    In a container, whose env folder holds only its component's file (no example beside it), the secrets
    of that file: a component reads only what compose gave it."""
    if not any(env_dir.glob("*.env.example")):
        return mounted_secrets(env_dir)
    values: dict[str, str] = {}
    for _, target in _env_files(env_dir):
        if not target.exists():
            raise FileNotFoundError(f"{target} is missing: run `make secrets` (or `make up`) first")
        values.update({k: v for k, v in dotenv_values(target).items() if v is not None})
    return values


def mounted_secrets(env_dir: Path) -> Mapping[str, str]:
    """The secrets of those env files that are present: a container mounts only the files it needs."""
    values: dict[str, str] = {}
    # the mounted files only (a container has no examples beside them)
    for target in sorted(env_dir.glob("*.env")):
        values.update({k: v for k, v in dotenv_values(target).items() if v is not None})
    return values
