"""Table definitions and the COPY payload; the round trip against a real Postgres belongs to the
integration tier."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pandas as pd

from fraudops import fraud_db
from fraudops.labels import label_records
from fraudops.schema import EVENT_COLUMNS


def test_ddl_covers_the_architecture_tables_idempotently() -> None:
    assert set(fraud_db.TABLES) == {
        "transactions_raw", "transactions_with_score", "fraud_alerts", "fraud_labels", "model_metadata",
    }  # fmt: skip
    for name, ddl in fraud_db.TABLES.items():
        statements = [s.strip() for s in ddl.split(";") if s.strip()]
        assert all("IF NOT EXISTS" in s for s in statements), name
        assert f"CREATE TABLE IF NOT EXISTS {name} (" in ddl
    for name in ("transactions_raw", "transactions_with_score", "fraud_alerts"):
        for column in EVENT_COLUMNS:
            assert f"\n    {column} " in fraud_db.TABLES[name], (name, column)
    assert "PRIMARY KEY (transaction_id)" in fraud_db.TABLES["transactions_with_score"]


class _Cursor:
    def __init__(self, log: list) -> None:
        self.log = log
        self.rowcount = 0

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str) -> None:
        self.log.append(("execute", sql))
        if sql.startswith("INSERT"):
            self.rowcount = self.pending

    def copy_expert(self, sql: str, buffer: io.StringIO) -> None:
        data = buffer.read()
        self.pending = len(data.splitlines())
        self.log.append(("copy", sql, data))


class _Connection:
    def __init__(self) -> None:
        self.log: list = []
        self.commits = 0

    def cursor(self) -> _Cursor:
        return _Cursor(self.log)

    def commit(self) -> None:
        self.commits += 1


def test_writes_copy_into_a_stage_then_insert_new_rows_only(small_transactions: pd.DataFrame) -> None:
    conn = _Connection()
    frame = small_transactions.head(3)
    assert fraud_db.write_transactions(conn, [frame, small_transactions.iloc[3:5]]) == 5
    copies = [entry for entry in conn.log if entry[0] == "copy"]
    inserts = [entry[1] for entry in conn.log if entry[1].startswith("INSERT")]
    assert len(copies) == 2 and conn.commits == 2
    assert (
        copies[0][1]
        == f"COPY _stage_transactions_raw ({', '.join(EVENT_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
    )
    first = copies[0][2].splitlines()[0].split(",")
    assert first[0] == frame["transaction_id"].iloc[0]
    assert pd.Timestamp(first[1]) == frame["tx_datetime"].iloc[0]
    assert float(first[4]) == frame["tx_amount"].iloc[0]
    assert all("ON CONFLICT (transaction_id) DO NOTHING" in s for s in inserts)

    conn = _Connection()
    fraud_db.write_labels(conn, label_records(frame))
    copy = next(entry for entry in conn.log if entry[0] == "copy")
    assert "available_at, source" in copy[1]
    assert copy[2].splitlines()[0].endswith(",simulator")


def test_sqlalchemy_connections_are_unwrapped() -> None:
    raw = _Connection()
    sa_connection = SimpleNamespace(connection=SimpleNamespace(dbapi_connection=raw))
    with fraud_db.connect(sa_connection) as conn:
        assert conn is raw


def test_dsn_uses_the_fraud_role_and_quotes_the_password() -> None:
    settings = SimpleNamespace(
        postgres=SimpleNamespace(databases={"fraud": "fraud"}),
        stack=SimpleNamespace(ports=SimpleNamespace(postgres=5432)),
        host_of=lambda service: "127.0.0.1",
    )
    dsn = fraud_db.fraud_dsn(settings, {"FRAUD_DB_PASSWORD": "p@ss/word"})
    assert dsn == "postgresql://fraud:p%40ss%2Fword@127.0.0.1:5432/fraud"
