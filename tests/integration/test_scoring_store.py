"""The scorer's Postgres store on the real database: a micro-batch is one transaction over all its
tables, a replay re-emits what was committed, and a conflicting duplicate is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pandas as pd
import psycopg2
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fraudops import fraud_db
from fraudops.scoring.batch import events_frame
from fraudops.scoring.parse import validate_frame
from fraudops.scoring.store import PostgresStore
from hostile_events import adversarial_event, plausible_event


@pytest.fixture
def store(running_stack) -> Iterator[tuple[PostgresStore, str]]:
    dsn = fraud_db.fraud_dsn(running_stack.settings, running_stack.secrets)
    fraud_db.create_tables(dsn)
    prefix = f"it-store-{uuid.uuid4().hex[:8]}-"
    store = PostgresStore(dsn, checkpoint=f"/checkpoints/{prefix}")
    yield store, prefix
    store.close()
    fraud_db.delete_transactions(dsn, prefix)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM scorer_batches WHERE checkpoint = %s", (store.checkpoint,))


def _batch(prefix: str, n: int, version: str, score: float, amount: float = 10.0):
    events = pd.DataFrame(
        {
            "transaction_id": [f"{prefix}{i}" for i in range(n)],
            "tx_datetime": pd.to_datetime("2026-11-01 10:00:00.123456") + pd.to_timedelta(range(n), unit="s"),
            "customer_id": range(n),
            "terminal_id": range(100, 100 + n),
            "tx_amount": [amount + i for i in range(n)],
        }
    )
    decision = "BLOCK" if score >= 0.9 else "REVIEW" if score >= 0.5 else "APPROVE"
    scored = events.assign(
        score=score,
        decision=decision,
        model_name="fraud-detector",
        model_version=version,
        features=['{"tx_amount": 1.0}'] * n,
        latency_ms=5.0,
    )
    return events, scored


def _commit(store: PostgresStore, batch_id: int, batch) -> object:
    return store.commit(batch_id, *batch, records=len(batch[0]), dead_letters=0, model_version="x")


def _rows(store: PostgresStore, table: str, prefix: str) -> list[tuple]:
    with psycopg2.connect(store.dsn) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT transaction_id, tx_amount FROM {table} WHERE transaction_id LIKE %s ORDER BY 1",
            (prefix + "%",),
        )
        return cur.fetchall()


def test_a_replayed_batch_re_emits_what_was_committed(store) -> None:
    store, prefix = store
    first = _commit(store, 7, _batch(prefix, 20, version="1", score=0.95))
    assert len(first.predictions) == 20 and set(first.predictions["model_version"]) == {"1"}
    # the same batch again after a crash, now under another champion with other scores
    again = _commit(store, 7, _batch(prefix, 20, version="2", score=0.1))
    assert not again.conflicts.any()
    assert set(again.predictions["model_version"]) == {"1"}
    assert set(again.predictions["decision"]) == {"BLOCK"}
    assert len(_rows(store, "fraud_alerts", prefix)) == 20
    with psycopg2.connect(store.dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT attempts, inserted FROM scorer_batches WHERE checkpoint = %s AND batch_id = 7",
            (store.checkpoint,),
        )
        assert cur.fetchone() == (2, 20)


def test_an_id_with_other_content_is_a_conflict(store) -> None:
    store, prefix = store
    _commit(store, 1, _batch(prefix, 5, version="1", score=0.2))
    events, scored = _batch(prefix, 8, version="1", score=0.2)
    events.loc[2, "tx_amount"] = 999.0  # id 2 comes again with another amount
    scored.loc[2, "tx_amount"] = 999.0
    result = _commit(store, 2, (events, scored))
    assert result.conflicts.tolist() == [False, False, True, False, False, False, False, False]
    assert sorted(result.predictions["transaction_id"]) == sorted(f"{prefix}{i}" for i in range(8) if i != 2)
    raw = dict(_rows(store, "transactions_raw", prefix))
    assert raw[f"{prefix}2"] == 12.0, "the stored event is kept"
    assert len(raw) == 8


def test_a_failing_batch_commits_nothing_and_the_store_goes_on(store) -> None:
    store, prefix = store
    events, scored = _batch(prefix, 10, version="1", score=0.95)
    broken = scored.assign(decision="MAYBE")  # refused by transactions_with_score, after the raw rows
    with pytest.raises(psycopg2.errors.CheckViolation):
        _commit(store, 3, (events, broken))
    assert _rows(store, "transactions_raw", prefix) == []
    assert _rows(store, "transactions_with_score", prefix) == []
    result = _commit(store, 3, (events, scored))
    assert len(result.predictions) == 10 and len(_rows(store, "fraud_alerts", prefix)) == 10


def test_a_replay_under_another_champion_raises_no_alert_for_an_approved_transaction(store) -> None:
    store, prefix = store
    _commit(store, 4, _batch(prefix, 6, version="1", score=0.1))  # APPROVE
    again = _commit(store, 4, _batch(prefix, 6, version="2", score=0.97))  # would BLOCK
    assert set(again.predictions["decision"]) == {"APPROVE"}
    assert _rows(store, "fraud_alerts", prefix) == []


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.one_of(adversarial_event(datetime(2026, 11, 30, 12)), plausible_event(datetime(2026, 11, 30, 12))),
        min_size=1,
        max_size=8,
    )
)
def test_whatever_the_parser_accepts_postgres_stores_and_gives_back(running_stack, payloads) -> None:
    """Property: every event the real parse step accepts is stored by the real sink and read back equal."""
    dsn = fraud_db.fraud_dsn(running_stack.settings, running_stack.secrets)
    prefix = f"it-prop-{uuid.uuid4().hex[:8]}-"
    kafka_ms = int(datetime(2026, 11, 30, 12).timestamp() * 1000)
    records = pd.DataFrame(
        {
            "value": payloads,
            "topic": "t",
            "partition": 0,
            "offset": range(len(payloads)),
            "kafka_ts_ms": pd.array([kafka_ms] * len(payloads), dtype="Int64"),
        }
    )
    parsed = validate_frame(records)
    good = parsed.loc[parsed["ok"].astype(bool)].copy()
    assume(len(good) > 0)
    good["transaction_id"] = [f"{prefix}{i}-{t}" for i, t in enumerate(good["transaction_id"])]
    store = PostgresStore(dsn, checkpoint=f"/checkpoints/{prefix}")
    try:
        events = events_frame(good)
        scored = events.assign(
            score=0.5, decision="REVIEW", model_name="m", model_version="1", features="{}", latency_ms=1.0
        )
        result = store.commit(1, events, scored, records=len(parsed), dead_letters=0, model_version="1")
        assert sorted(result.predictions["transaction_id"]) == sorted(events["transaction_id"])
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT transaction_id, tx_datetime, customer_id, terminal_id, tx_amount"
                " FROM transactions_raw WHERE transaction_id LIKE %s ORDER BY transaction_id",
                (prefix + "%",),
            )
            back = cur.fetchall()
        expected = sorted(events.itertuples(index=False, name=None))
        assert [(r[0], pd.Timestamp(r[1]), r[2], r[3], r[4]) for r in back] == [
            (e[0], pd.Timestamp(e[1]), e[2], e[3], e[4]) for e in expected
        ]
    finally:
        store.close()
        fraud_db.delete_transactions(dsn, prefix)
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM scorer_batches WHERE checkpoint = %s", (store.checkpoint,))


def test_a_batch_of_dead_letters_only_is_recorded(store) -> None:
    store, prefix = store
    events, scored = _batch(prefix, 3, version="1", score=0.2)
    result = store.commit(9, events.iloc[:0], scored.iloc[:0], records=5, dead_letters=5, model_version="1")
    assert result.predictions.empty and len(result.conflicts) == 0
    with psycopg2.connect(store.dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT records, inserted, dead_letters FROM scorer_batches"
            " WHERE checkpoint = %s AND batch_id = 9",
            (store.checkpoint,),
        )
        assert cur.fetchone() == (5, 0, 5)


def test_the_demo_reports_count_what_was_committed(store) -> None:
    store, prefix = store
    dsn = store.dsn
    since = fraud_db.database_now(dsn)
    version = f"it-{uuid.uuid4().hex[:6]}"
    _commit(store, 1, _batch(prefix, 4, version, 0.95))
    _commit(store, 2, _batch(prefix + "b", 3, version, 0.1))
    scored = fraud_db.scored_since(dsn, since)
    assert scored[(version, "BLOCK")] == 4 and scored[(version, "APPROVE")] == 3
    assert fraud_db.alerts_since(dsn, since).get("BLOCK", 0) >= 4
    p50, p99 = fraud_db.latency_percentiles_ms(dsn, since)
    assert p50 is not None and p99 >= p50
    assert fraud_db.scored_since(dsn, fraud_db.database_now(dsn)).get((version, "BLOCK")) is None


def test_the_scorer_role_appends_but_cannot_drop_alter_or_delete(running_stack) -> None:
    from psycopg2 import errors

    from fraudops.connections import scorer_dsn

    dsn = scorer_dsn(running_stack.settings, running_stack.secrets)
    prefix = f"it-role-{uuid.uuid4().hex[:8]}-"
    store = PostgresStore(dsn, checkpoint=f"/checkpoints/{prefix}")
    try:
        committed = _commit(store, 1, _batch(prefix, 3, "1", 0.95))
        assert committed is not None
        assert len(_rows(store, "fraud_alerts", prefix)) == 3
        _commit(store, 1, _batch(prefix, 3, "1", 0.95))  # a replay: the batch log's attempt counter
        for statement in (
            "DROP TABLE fraud_alerts",
            "ALTER TABLE transactions_with_score ADD COLUMN evil text",
            "TRUNCATE fraud_labels",
            f"DELETE FROM transactions_with_score WHERE transaction_id LIKE '{prefix}%'",
            "UPDATE transactions_with_score SET score = 0",
            "CREATE TABLE scorer_may_not (i int)",
            "SELECT count(*) FROM model_metadata",
        ):
            with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
                with pytest.raises(errors.InsufficientPrivilege):
                    cur.execute(statement)
            conn.close()
    finally:
        store.close()
        owner = fraud_db.fraud_dsn(running_stack.settings, running_stack.secrets)
        fraud_db.delete_transactions(owner, prefix)
        with psycopg2.connect(owner) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM scorer_batches WHERE checkpoint = %s", (store.checkpoint,))
        conn.close()
