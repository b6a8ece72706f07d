"""Secrets reach the native stack's programs as private files in each program's own format, never through
the environment (fraudops.stack.service_secrets and the services built on it)."""

from __future__ import annotations

import configparser
from collections import defaultdict
from pathlib import Path

import pytest

from fraudops.config.settings import load_settings
from fraudops.private_files import write_private
from fraudops.secrets import ensure_secrets, load_secrets
from fraudops.stack.airflow_env import (
    AIRFLOW_SECRET_OPTIONS,
    airflow_environment,
    airflow_process_environment,
    write_airflow_config,
)
from fraudops.stack.layout import StackLayout
from fraudops.stack.service_secrets import (
    airflow_cfg,
    aws_credentials,
    env_file,
    pgpass,
    split_env_options,
)
from fraudops.stack.services import build_services, mlflow_server_env, write_mlflow_secrets

REPO = Path(__file__).resolve().parents[2]


def _parse_pgpass(line: str) -> list[str]:
    """libpq's reading of one .pgpass line: ':' separates, '\\' escapes the next character."""
    fields, current, escaped = [], "", False
    for char in line.rstrip("\n"):
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    return [*fields, current]


def test_pgpass_escapes_separators_so_libpq_reads_the_password_back() -> None:
    line = pgpass("127.0.0.1", 5432, "mlflow", "mlflow", r"a:b\c")
    assert _parse_pgpass(line) == ["127.0.0.1", "5432", "mlflow", "mlflow", r"a:b\c"]
    assert line.count("\n") == 1


def test_aws_credentials_is_a_default_profile() -> None:
    parser = configparser.ConfigParser()
    parser.read_string(aws_credentials("user", "s3cret"))
    assert dict(parser["default"]) == {"aws_access_key_id": "user", "aws_secret_access_key": "s3cret"}


def test_env_file_writes_one_line_per_key_and_refuses_a_multi_line_value() -> None:
    assert env_file({"A": "1", "B": "x=y"}) == "A=1\nB=x=y\n"
    with pytest.raises(ValueError):
        env_file({"A": "1\nB=2"})


def test_airflow_cfg_reads_back_through_interpolation() -> None:
    options = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://a:p%40ss@h/db",
        "AIRFLOW__CORE__FERNET_KEY": "k=",
        "AIRFLOW__API_AUTH__JWT_SECRET": "j",
    }
    # Airflow's parser interpolates like ConfigParser's default: a literal % must survive it
    parser = configparser.ConfigParser()
    parser.read_string(airflow_cfg(options))
    assert parser.get("database", "sql_alchemy_conn") == "postgresql://a:p%40ss@h/db"
    assert parser.get("core", "fernet_key") == "k="
    assert parser.get("api_auth", "jwt_secret") == "j"
    with pytest.raises(ValueError):
        airflow_cfg({"CORE__X": "1"})


def test_split_env_options_moves_only_the_named_keys() -> None:
    public, secret = split_env_options({"A": "1", "S": "2"}, frozenset({"S"}))
    assert public == {"A": "1"} and secret == {"S": "2"}


def test_write_private_is_owner_only_and_replaces(tmp_path: Path) -> None:
    path = write_private(tmp_path / "d" / "f", "one")
    write_private(path, "two")
    assert path.read_text() == "two"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["f"]


@pytest.fixture
def real_secrets(tmp_path: Path) -> dict[str, str]:
    """Secrets generated from the committed examples, as `make secrets` makes them."""
    env = tmp_path / "env"
    env.mkdir()
    for example in (REPO / "env").glob("*.env.example"):
        (env / example.name).write_text(example.read_text())
    ensure_secrets(env)
    return dict(load_secrets(env))


def _secret_values(secrets: dict[str, str]) -> set[str]:
    # user names are not secrets (they show in URLs and logs)
    return {v for k, v in secrets.items() if v and not k.endswith("_USER")}


def test_airflow_processes_get_no_secret_in_their_environment(
    tmp_path: Path, real_secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDOPS_STACK__DATA_DIR", str(tmp_path / "stack"))
    settings = load_settings()
    env = airflow_process_environment(settings, real_secrets)
    assert not AIRFLOW_SECRET_OPTIONS & env.keys()
    assert not any(value in " ".join(env.values()) for value in _secret_values(real_secrets))
    # every secret option is in the file AIRFLOW_CONFIG names, readable by the owner only
    path = write_airflow_config(settings, real_secrets)
    assert env["AIRFLOW_CONFIG"] == str(path) and path.stat().st_mode & 0o777 == 0o600
    parser = configparser.ConfigParser()
    parser.read(path)
    full = airflow_environment(settings, real_secrets)
    for option in AIRFLOW_SECRET_OPTIONS:
        _, section, key = option.split("__", 2)
        assert parser.get(section.lower(), key.lower()) == full[option], option


def test_the_mlflow_server_reads_its_database_password_and_s3_keys_from_files(
    tmp_path: Path, real_secrets: dict[str, str]
) -> None:
    settings = load_settings()
    layout = StackLayout(tmp_path)
    env = mlflow_server_env(settings, layout)
    assert not any(value in " ".join(env.values()) for value in _secret_values(real_secrets))
    write_mlflow_secrets(settings, real_secrets, layout)
    host, port, database, user, password = _parse_pgpass(Path(env["PGPASSFILE"]).read_text())
    assert f"{user}@{host}:{port}/{database}" in env["MLFLOW_BACKEND_STORE_URI"]
    assert password == real_secrets["MLFLOW_DB_PASSWORD"]
    parser = configparser.ConfigParser()
    parser.read(env["AWS_SHARED_CREDENTIALS_FILE"])
    assert parser.get("default", "aws_secret_access_key") == real_secrets["MINIO_MLFLOW_SECRET_KEY"]
    for name in ("PGPASSFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        assert Path(env[name]).stat().st_mode & 0o777 == 0o600


def test_no_service_of_the_native_stack_gets_a_secret_in_its_environment(
    tmp_path: Path, real_secrets: dict[str, str]
) -> None:
    services = build_services(load_settings(), defaultdict(str, real_secrets), StackLayout(tmp_path))
    values = _secret_values(real_secrets)
    leaks = sorted(
        name
        for name, service in services.items()
        if any(value in " ".join(service.spec.env.values()) for value in values)
    )
    assert leaks == []
    # MinIO's root key reaches it through its config env file
    minio = services["minio"]
    assert minio.prepare is not None
    minio.prepare()
    root = Path(minio.spec.env["MINIO_CONFIG_ENV_FILE"]).read_text()
    assert f"MINIO_ROOT_PASSWORD={real_secrets['MINIO_ROOT_PASSWORD']}\n" in root
