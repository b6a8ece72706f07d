"""Airflow's one-time set-up: the metadata database schema and the admin account.

The native stack runs it on `make up`, the compose file in its `airflow-init` service
(`fraudops stack airflow-init`), so both set Airflow up the same way. Each step runs only when its input
changed (Airflow or FAB version; admin name or password): an Airflow CLI call costs seconds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import IO

from fraudops.config.settings import Settings
from fraudops.stack.airflow_env import airflow_home, airflow_process_environment, write_airflow_config


class AirflowInitError(RuntimeError):
    pass


def admin_fingerprint(user: str, password: str) -> str:
    # the marker file holds a digest, never the password itself
    return hashlib.sha256(f"{user}\0{password}".encode()).hexdigest()


def airflow_command(
    settings: Settings, secrets: Mapping[str, str], airflow_bin: str, log_file: IO[bytes] | None = None
) -> Callable[..., str]:
    """``airflow <args>`` with the stack's configuration; returns its output, raises on failure."""
    write_airflow_config(settings, secrets)
    env = {**os.environ, **airflow_process_environment(settings, secrets)}

    def airflow(*args: str) -> str:
        result = subprocess.run(
            [airflow_bin, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
        )
        if log_file is not None:
            log_file.write(result.stdout)
            log_file.flush()
        output = result.stdout.decode(errors="replace")
        if result.returncode != 0:
            # never echo the command line: it may carry a password
            raise AirflowInitError(f"`airflow {' '.join(args[:2])}` failed:\n{output[-2000:]}")
        return output

    return airflow


def init_airflow(
    settings: Settings,
    secrets: Mapping[str, str],
    airflow_bin: str,
    log_file: IO[bytes] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> None:
    """Migrate the metadata database (once per Airflow+FAB version), create or update the admin account."""
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    # the password file of the SimpleAuthManager that earlier versions used: a plain-text copy, now unused
    (home / "simple_auth_manager_passwords.json").unlink(missing_ok=True)
    airflow = airflow_command(settings, secrets, airflow_bin, log_file)

    migrated = home / ".migrated"
    # the FAB provider brings its own tables (users, roles): its upgrades migrate too
    wanted = f"airflow {version('apache-airflow-core')}, fab {version('apache-airflow-providers-fab')}"
    if _marker(migrated) != wanted:
        log("migrating the Airflow metadata database")
        airflow("db", "migrate")
        migrated.write_text(wanted + "\n")

    user, password = settings.airflow.admin_user, secrets["AIRFLOW_ADMIN_PASSWORD"]
    admin_marker = home / ".admin"
    fingerprint = admin_fingerprint(user, password)
    if _marker(admin_marker) == fingerprint:
        return
    log(f"setting up the Airflow admin account {user!r}")
    # in a Python process of Airflow's environment, the password on stdin (see fraudops.stack.airflow_admin)
    result = subprocess.run(
        [sys.executable, "-m", "fraudops.stack.airflow_admin", user],
        input=(password + "\n").encode(),
        env={**os.environ, **airflow_process_environment(settings, secrets)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if log_file is not None:
        log_file.write(result.stdout)
        log_file.flush()
    if result.returncode != 0:
        raise AirflowInitError(
            f"setting up the Airflow admin failed:\n{result.stdout.decode(errors='replace')[-2000:]}"
        )
    admin_marker.write_text(fingerprint + "\n")
    admin_marker.chmod(0o600)


def _marker(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None
