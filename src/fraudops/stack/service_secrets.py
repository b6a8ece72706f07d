"""Secrets handed to the native stack's programs as files, never through their environment.

A process's environment is readable in ``/proc/<pid>/environ`` by its owner and inherited by every child
(an Airflow task, a Spark JVM, a shell a task spawns). Each program here gets instead the path of a mode-600
file in its own supported format: MinIO's ``MINIO_CONFIG_ENV_FILE``, libpq's ``PGPASSFILE``, the AWS SDKs'
``AWS_SHARED_CREDENTIALS_FILE``, Airflow's ``AIRFLOW_CONFIG``, the exporters' password-file options.
The builders of the file contents are pure; :func:`fraudops.private_files.write_private` writes one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from fraudops.stack.layout import StackLayout


def secrets_dir(layout: StackLayout) -> Path:
    """Where the stack writes the secret files of its services (regenerated on every start)."""
    return layout.run / "secrets"


def _pgpass_field(value: str) -> str:
    # libpq's .pgpass escapes only ':' and '\'
    return value.replace("\\", "\\\\").replace(":", "\\:")


def pgpass(host: str, port: int, database: str, user: str, password: str) -> str:
    """One line of a libpq password file (``PGPASSFILE``): this login on this server and database only."""
    fields = (host, str(port), database, user, password)
    return ":".join(_pgpass_field(f) for f in fields) + "\n"


def aws_credentials(access_key: str, secret_key: str) -> str:
    """A shared credentials file (``AWS_SHARED_CREDENTIALS_FILE``) with one default profile."""
    return f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"


def env_file(values: Mapping[str, str]) -> str:
    """``KEY=value`` lines, as MinIO's ``MINIO_CONFIG_ENV_FILE`` reads them (one value per line)."""
    for key, value in values.items():
        if "\n" in value or "\n" in key:
            raise ValueError(f"{key}: a value of an env file must fit on one line")
    return "".join(f"{key}={value}\n" for key, value in values.items())


def split_env_options(
    env: Mapping[str, str], secret_keys: frozenset[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(the environment without ``secret_keys``, the secret ones): what stays in the environment and what
    goes to a file."""
    public = {k: v for k, v in env.items() if k not in secret_keys}
    secret = {k: v for k, v in env.items() if k in secret_keys}
    return public, secret


def airflow_cfg(options: Mapping[str, str]) -> str:
    """An ``airflow.cfg`` of ``AIRFLOW__SECTION__KEY`` options. Airflow reads it with interpolation, so a
    literal ``%`` is doubled."""
    sections: dict[str, list[str]] = {}
    for name, value in options.items():
        prefix, section, key = name.split("__", 2)
        if prefix != "AIRFLOW" or not section or not key:
            raise ValueError(f"{name} is not an AIRFLOW__SECTION__KEY option")
        if "\n" in value:
            raise ValueError(f"{name}: a value of airflow.cfg must fit on one line")
        sections.setdefault(section.lower(), []).append(f"{key.lower()} = {value.replace('%', '%%')}")
    return "".join(f"[{section}]\n" + "\n".join(lines) + "\n\n" for section, lines in sections.items())


def redis_password_file(address: str, password: str) -> str:
    """redis_exporter's ``-redis.password-file``: a JSON object of Redis URL (as in ``-redis.addr``) ->
    password."""
    return json.dumps({address: password}) + "\n"
