"""The retraining pipeline's and the producer's own Postgres roles on the real stack: each does what its
component needs (through the component's own code) and is refused everything else: DDL, DELETE,
TRUNCATE, other components' tables. The grants are one table (fraudops.stack.postgres.fraud_grants), which
the init step applies exactly."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime

import psycopg2
import pytest
from psycopg2 import errors

from fraudops import fraud_db
from fraudops.audit import AuditRow, PostgresAudit
from fraudops.config.model import SimulatorSettings
from fraudops.connections import fraud_role, fraud_role_dsn, pipeline_dsn, producer_dsn
from fraudops.drift import DriftReport, latest_report, record_report
from fraudops.history import load_simulated_history, next_stream_start
from fraudops.stack.postgres import init_fraud_roles


def _refused(dsn: str, statements: list[str]) -> None:
    for statement in statements:
        conn = psycopg2.connect(dsn)
        try:
            with conn.cursor() as cur, pytest.raises(errors.InsufficientPrivilege):
                cur.execute(statement)
        finally:
            conn.close()


# what no component role may do to the shared tables (the owner, in the init step, alone runs DDL)
DDL = [
    "CREATE TABLE role_may_not (i int)",
    "DROP TABLE fraud_labels",
    "ALTER TABLE transactions_raw ADD COLUMN evil text",
    "CREATE INDEX role_may_not_idx ON fraud_labels (note)",
    "TRUNCATE fraud_labels",
]


def test_the_pipeline_reads_history_writes_its_audit_and_drift_rows_and_nothing_else(running_stack) -> None:
    settings, secrets = running_stack.settings, running_stack.secrets
    dsn = pipeline_dsn(settings, secrets)
    owner = fraud_db.fraud_dsn(settings, secrets)
    name = f"it-role-{uuid.uuid4().hex[:8]}"
    # what extract runs: transactions with the labels known at a cutoff (COPY out)
    fraud_db.require_tables(dsn, fraud_db.TRAINING_TABLES)
    frame = fraud_db.read_transactions(dsn, datetime(2031, 1, 1), datetime(2031, 1, 2), labels_known_at=None)
    assert frame.empty
    # the audit log: a retried task rewrites its row (the upsert's UPDATE), as the pipeline's role
    mlflow = settings.mlflow.model_copy(update={"model_name": name})
    audit = PostgresAudit(settings.model_copy(update={"mlflow": mlflow}), secrets)
    report = DriftReport(name, "1", 600, 0.2, psi={"score": 0.05}, checked_at=datetime.now(UTC))
    try:
        for reason in ("first attempt", "retry"):
            audit.record([AuditRow("evaluation", model_version="1", reason=reason, key="run/evaluate/x")])
        # the drift check appends its report; the platform exporter reads it as the monitor role
        record_report(dsn, report)
        assert latest_report(fraud_role_dsn(settings, secrets, "monitor")) == {"score": 0.05}
        with fraud_db.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT reason FROM model_metadata WHERE model_name = %s", (name,))
            assert cur.fetchall() == [("retry",)]
            cur.execute("SELECT count(*) FROM transactions_with_score WHERE model_name = %s", (name,))
            assert cur.fetchone() == (0,)
        _refused(
            dsn,
            [
                *DDL,
                f"DELETE FROM model_metadata WHERE model_name = '{name}'",
                "TRUNCATE model_metadata",
                # history and labels are the producer's and the console's to write
                "INSERT INTO fraud_labels (transaction_id, tx_fraud, available_at) VALUES ('x', 1, now())",
                "UPDATE fraud_labels SET tx_fraud = 1 WHERE false",
                "DELETE FROM transactions_raw WHERE false",
                # the scorer's tables: read its scores (drift), never write them
                "UPDATE transactions_with_score SET score = 0 WHERE false",
                "SELECT count(*) FROM fraud_alerts",
                "SELECT count(*) FROM scorer_batches",
                "SELECT count(*) FROM drift_reports",
                "DELETE FROM drift_reports WHERE false",
                # no staging tables: it copies nothing in
                "CREATE TEMP TABLE role_may_not (i int)",
            ],
        )
    finally:
        with fraud_db.connect(owner) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM model_metadata WHERE model_name = %s", (name,))
            cur.execute("DELETE FROM drift_reports WHERE model_name = %s", (name,))
            conn.commit()


def test_the_producer_appends_transactions_and_labels_and_nothing_else(running_stack) -> None:
    settings, secrets = running_stack.settings, running_stack.secrets
    dsn = producer_dsn(settings, secrets)
    seed = random.randint(10_000, 99_999)  # ids start with the seed: this test's rows only
    world = SimulatorSettings(
        n_customers=30, n_terminals=60, n_days=3, start_date=date(2031, 2, 1), seed=seed
    )
    try:
        new_tx, new_labels = load_simulated_history(world, dsn)
        assert new_tx > 0 and new_labels == new_tx
        assert load_simulated_history(world, dsn) == (0, 0)  # a reload adds nothing (ON CONFLICT)
        assert next_stream_start(world, dsn) == datetime(2031, 2, 4)  # reads the newest simulated day
        _refused(
            dsn,
            [
                *DDL,
                f"DELETE FROM transactions_raw WHERE transaction_id LIKE '{seed}-%'",
                f"DELETE FROM fraud_labels WHERE transaction_id LIKE '{seed}-%'",
                "UPDATE fraud_labels SET tx_fraud = 1 - tx_fraud WHERE false",
                "UPDATE transactions_raw SET tx_amount = 0 WHERE false",
                # the scorer's, the pipeline's and the console's tables
                "SELECT count(*) FROM transactions_with_score",
                "SELECT count(*) FROM fraud_alerts",
                "SELECT count(*) FROM model_metadata",
                "INSERT INTO model_metadata (model_name, event) VALUES ('x', 'promotion')",
                "INSERT INTO drift_reports VALUES (now(), 'x', '1', 'score', 0, 0)",
            ],
        )
    finally:
        fraud_db.delete_transactions(fraud_db.fraud_dsn(settings, secrets), f"{seed}-")


def test_a_missing_table_is_named_with_the_fix(running_stack) -> None:
    """A role may not create its tables: pointed at a database without them, the component says which
    are missing and that the init step makes them."""
    settings, secrets = running_stack.settings, running_stack.secrets
    elsewhere = producer_dsn(settings, secrets).rsplit("/", 1)[0] + "/postgres"
    with pytest.raises(RuntimeError, match=r"lacks transactions_raw, fraud_labels: .*fraudops stack init-db"):
        load_simulated_history(SimulatorSettings(n_customers=5, n_terminals=5, n_days=1), elsewhere)


def test_the_init_step_gives_each_role_exactly_its_grants(running_stack) -> None:
    """A privilege granted by hand (or by an older version) is gone after the next init step."""
    settings, secrets = running_stack.settings, running_stack.secrets
    producer = fraud_role(settings, "producer")
    with fraud_db.connect(fraud_db.fraud_dsn(settings, secrets)) as conn, conn.cursor() as cur:
        cur.execute(f'GRANT DELETE, UPDATE ON fraud_labels, model_metadata TO "{producer}"')
        conn.commit()
    init_fraud_roles(settings, secrets)
    _refused(
        producer_dsn(settings, secrets),
        ["DELETE FROM fraud_labels WHERE false", "UPDATE model_metadata SET reason = '' WHERE false"],
    )
