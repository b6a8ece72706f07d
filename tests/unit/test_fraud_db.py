"""Table definitions and the DSN; writes and reads run against the real Postgres in
tests/integration/test_fraud_db.py."""

from __future__ import annotations

from types import SimpleNamespace

from fraudops import fraud_db
from fraudops.schema import EVENT_COLUMNS


def test_ddl_covers_the_architecture_tables_idempotently() -> None:
    assert set(fraud_db.TABLES) == {
        "transactions_raw", "transactions_with_score", "fraud_alerts", "fraud_labels", "model_metadata",
        "scorer_batches", "drift_reports",
    }  # fmt: skip
    for name, ddl in fraud_db.TABLES.items():
        statements = [s.strip() for s in ddl.split(";") if s.strip()]
        assert all("IF NOT EXISTS" in s for s in statements), name
        assert f"CREATE TABLE IF NOT EXISTS {name} (" in ddl
    for name in ("transactions_raw", "transactions_with_score", "fraud_alerts"):
        for column in EVENT_COLUMNS:
            assert f"\n    {column} " in fraud_db.TABLES[name], (name, column)
    assert "PRIMARY KEY (transaction_id)" in fraud_db.TABLES["transactions_with_score"]


def test_dsn_uses_the_fraud_role_and_quotes_the_password() -> None:
    settings = SimpleNamespace(
        postgres=SimpleNamespace(databases={"fraud": "fraud"}),
        stack=SimpleNamespace(ports=SimpleNamespace(postgres=5432)),
        host_of=lambda service: "127.0.0.1",
    )
    dsn = fraud_db.fraud_dsn(settings, {"FRAUD_DB_PASSWORD": "p@ss/word"})
    assert dsn == "postgresql://fraud:p%40ss%2Fword@127.0.0.1:5432/fraud"


def test_every_component_url_reads_the_database_mapping_one_way(monkeypatch) -> None:
    """``postgres.databases`` maps a component (its role) to its database, for the init step that creates
    them and for every client: with a non-default mapping they still meet."""
    from fraudops.config.settings import load_settings
    from fraudops.connections import component_url

    monkeypatch.setenv(
        "FRAUDOPS_POSTGRES__DATABASES", '{"airflow": "af", "mlflow": "ml", "fraud": "fraud_prod"}'
    )
    settings = load_settings()
    secrets = {"FRAUD_DB_PASSWORD": "a:b@c", "MLFLOW_DB_PASSWORD": "m/n", "AIRFLOW_DB_PASSWORD": "x%y"}
    host = f"{settings.host_of('postgres')}:{settings.stack.ports.postgres}"
    assert fraud_db.fraud_dsn(settings, secrets) == f"postgresql://fraud:a%3Ab%40c@{host}/fraud_prod"
    assert component_url(settings, secrets, "mlflow") == f"postgresql+psycopg2://mlflow:m%2Fn@{host}/ml"
    assert component_url(settings, secrets, "airflow").endswith(f"://airflow:x%25y@{host}/af")


def test_superuser_and_redis_urls_quote_their_passwords(monkeypatch) -> None:
    import psycopg2.extensions

    from fraudops.config.settings import load_settings
    from fraudops.connections import redis_url, superuser_dsn

    monkeypatch.setenv("FRAUDOPS_STACK__PORTS__POSTGRES", "6543")
    settings = load_settings()
    secrets = {"POSTGRES_PASSWORD": "a b@c/d", "REDIS_PASSWORD": "r:s@t"}
    dsn = superuser_dsn(settings, secrets, database="fraud")
    # libpq's own parser reads back what we meant
    parsed = psycopg2.extensions.parse_dsn(dsn)
    assert parsed["password"] == "a b@c/d" and parsed["port"] == "6543" and parsed["dbname"] == "fraud"
    assert parsed["user"] == settings.postgres.superuser
    assert redis_url(settings, secrets).startswith("redis://:r%3As%40t@")
