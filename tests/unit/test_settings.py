from __future__ import annotations

import pytest
from pydantic import ValidationError

from fraudops.config.settings import load_settings


def test_defaults_come_from_the_config_file() -> None:
    settings = load_settings()
    assert settings.stack.ports.kafka == [9092, 9093, 9094]
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.data_dir == settings.project_root / ".stack"


def test_environment_overrides_nested_keys(monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_STACK__PORTS__POSTGRES", "15432")
    monkeypatch.setenv("FRAUDOPS_STACK__HOSTS__MLFLOW", "mlflow")
    monkeypatch.setenv("FRAUDOPS_STACK__DATA_DIR", "/srv/fraudops")
    settings = load_settings()
    assert settings.stack.ports.postgres == 15432
    assert settings.stack.ports.redis == 6379  # siblings keep their file values
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert str(settings.data_dir) == "/srv/fraudops"


def test_unknown_keys_are_rejected(monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_STACK__PORTS__POSTGRESS", "1")
    with pytest.raises(ValidationError):
        load_settings()
