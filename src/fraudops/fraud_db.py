"""The ``fraud`` Postgres database: table definitions (one place) and bulk reads and writes.

Writes are idempotent: rows are COPY-ed (the fast path, ~10x an INSERT loop) into a temporary staging
table and moved with ``INSERT ... ON CONFLICT (transaction_id) DO NOTHING``, so re-running a load or a
DAG task never duplicates a transaction. Functions accept a DSN string, a psycopg2 connection, or a
SQLAlchemy engine / connection, and commit their own work.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from fraudops.decisions import DECISIONS
from fraudops.labels import LABEL_RECORD_COLUMNS
from fraudops.schema import EVENT_COLUMNS, EVENT_FIELDS, pandas_dtypes

_SQL_TYPES = {"string": "text", "timestamp": "timestamp", "int": "bigint", "float": "double precision"}
# the event columns, derived from the schema; timestamps hold UTC without a zone, like the frames
_EVENT_COLUMNS_SQL = ",\n    ".join(f"{f.name} {_SQL_TYPES[f.kind]} NOT NULL" for f in EVENT_FIELDS)
_DECISIONS_SQL = ", ".join(f"'{d}'" for d in DECISIONS)

TABLES: dict[str, str] = {
    # every transaction seen, as it arrived
    "transactions_raw": f"""
CREATE TABLE IF NOT EXISTS transactions_raw (
    {_EVENT_COLUMNS_SQL},
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (transaction_id),
    CHECK (tx_amount >= 0)
);
CREATE INDEX IF NOT EXISTS transactions_raw_tx_datetime_idx ON transactions_raw (tx_datetime);
CREATE INDEX IF NOT EXISTS transactions_raw_terminal_idx ON transactions_raw (terminal_id, tx_datetime);
""",
    # delayed ground truth; no foreign key: a label may arrive before its transaction is stored
    "fraud_labels": """
CREATE TABLE IF NOT EXISTS fraud_labels (
    transaction_id text PRIMARY KEY,
    tx_fraud smallint NOT NULL CHECK (tx_fraud IN (0, 1)),
    tx_fraud_scenario smallint NOT NULL DEFAULT 0,
    available_at timestamp NOT NULL,
    source text NOT NULL DEFAULT 'simulator',
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS fraud_labels_available_at_idx ON fraud_labels (available_at);
-- an analyst's verdict (source 'analyst', fraudops.labels.prevails): who gave it and why
ALTER TABLE fraud_labels ADD COLUMN IF NOT EXISTS labelled_by text;
ALTER TABLE fraud_labels ADD COLUMN IF NOT EXISTS note text;
""",
    # one row per transaction id (the scorer upserts), stamped with the model that scored it
    "transactions_with_score": f"""
CREATE TABLE IF NOT EXISTS transactions_with_score (
    {_EVENT_COLUMNS_SQL},
    score double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    decision text NOT NULL CHECK (decision IN ({_DECISIONS_SQL})),
    model_name text NOT NULL,
    model_version text NOT NULL,
    features jsonb,
    latency_ms double precision,
    scored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (transaction_id)
);
CREATE INDEX IF NOT EXISTS transactions_with_score_tx_datetime_idx ON transactions_with_score (tx_datetime);
-- the console's charts over time and its searches by customer / terminal
CREATE INDEX IF NOT EXISTS transactions_with_score_scored_at_idx ON transactions_with_score (scored_at);
""",
    "fraud_alerts": f"""
CREATE TABLE IF NOT EXISTS fraud_alerts (
    alert_id bigserial PRIMARY KEY,
    {_EVENT_COLUMNS_SQL},
    score double precision NOT NULL,
    decision text NOT NULL CHECK (decision IN ({_DECISIONS_SQL}) AND decision <> 'APPROVE'),
    model_name text NOT NULL,
    model_version text NOT NULL,
    status text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'confirmed_fraud', 'false_positive', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (transaction_id)
);
-- the console's alert list: newest first, filtered by decision, customer or terminal (fraudops.console)
CREATE INDEX IF NOT EXISTS fraud_alerts_tx_datetime_idx ON fraud_alerts (tx_datetime DESC, alert_id DESC);
CREATE INDEX IF NOT EXISTS fraud_alerts_customer_idx ON fraud_alerts (customer_id, tx_datetime DESC);
CREATE INDEX IF NOT EXISTS fraud_alerts_terminal_idx ON fraud_alerts (terminal_id, tx_datetime DESC);
""",
    # every micro-batch the scorer committed: its tables and this row are one Postgres transaction
    "scorer_batches": """
CREATE TABLE IF NOT EXISTS scorer_batches (
    checkpoint text NOT NULL,
    batch_id bigint NOT NULL,
    records integer NOT NULL,
    inserted integer NOT NULL,
    dead_letters integer NOT NULL,
    model_version text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (checkpoint, batch_id)
);
""",
    # every evaluation and promotion decision, with its metrics
    "model_metadata": """
CREATE TABLE IF NOT EXISTS model_metadata (
    id bigserial PRIMARY KEY,
    model_name text NOT NULL,
    model_version text,
    run_id text,
    family text,
    event text NOT NULL CHECK (event IN ('evaluation', 'promotion', 'rejection', 'rollback')),
    alias text,
    decision text,
    reason text,
    metrics jsonb NOT NULL DEFAULT '{}'::jsonb,
    data_snapshot text,
    event_key text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS model_metadata_model_idx ON model_metadata (model_name, created_at);
-- a retried pipeline task rewrites its rows (fraudops.audit), and older tables gain the key here
ALTER TABLE model_metadata ADD COLUMN IF NOT EXISTS event_key text;
CREATE UNIQUE INDEX IF NOT EXISTS model_metadata_event_key_idx ON model_metadata (model_name, event_key);
""",
    # PSI per column of each drift check (fraudops.drift; the platform exporter reads the latest)
    "drift_reports": """
CREATE TABLE IF NOT EXISTS drift_reports (
    checked_at timestamptz NOT NULL,
    model_name text NOT NULL,
    model_version text NOT NULL,
    feature text NOT NULL,
    psi double precision NOT NULL,
    rows bigint NOT NULL,
    PRIMARY KEY (checked_at, feature)
);
""",
}


def fraud_dsn(settings: Any, secrets: Mapping[str, str]) -> str:
    """DSN of the fraud database for its owner, the ``fraud`` role
    (:func:`fraudops.connections.component_url`): the init step's, and tests' that clean up after
    themselves. Components log in as their own roles (:data:`fraudops.connections.FRAUD_ROLES`)."""
    from fraudops.connections import component_url

    return component_url(settings, secrets, "fraud", driver="postgresql")


@contextmanager
def connect(target: Any) -> Iterator[Any]:
    """A DBAPI (psycopg2) connection from a DSN, a psycopg2 connection or a SQLAlchemy engine/connection.

    A connection this opens is closed on exit; one that the caller passed stays open.
    """
    if isinstance(target, str):
        import psycopg2

        conn = psycopg2.connect(target)
        try:
            yield conn
        finally:
            conn.close()
    elif hasattr(target, "raw_connection"):  # SQLAlchemy Engine
        conn = target.raw_connection()
        try:
            yield conn
        finally:
            conn.close()
    elif hasattr(target, "connection") and hasattr(target.connection, "dbapi_connection"):  # SA Connection
        yield target.connection.dbapi_connection
    else:
        yield target


def create_tables(target: Any, tables: Iterable[str] | None = None) -> list[str]:
    """Create the tables (all by default) if they do not exist; safe to run any number of times. Only the
    owner may: the init step runs it (:func:`fraudops.stack.postgres.init_fraud_roles`), every component
    checks with :func:`require_tables`."""
    names = list(TABLES) if tables is None else list(tables)
    with connect(target) as conn:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(TABLES[name])
        conn.commit()
    return names


def require_tables(target: Any, tables: Iterable[str]) -> None:
    """Fail clearly unless every table of ``tables`` exists (for a role that may not create them)."""
    wanted = list(tables)
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NULL", (wanted,))
        missing = [row[0] for row in cur.fetchall()]
        conn.rollback()
    if missing:
        raise RuntimeError(
            f"the fraud database lacks {', '.join(missing)}: run `make up` or `fraudops stack init-db` "
            "(the init step creates the tables; this role may not)"
        )


def copy_upsert(
    conn: Any, table: str, frame: pd.DataFrame, key: str = "transaction_id", commit: bool = True
) -> int:
    """COPY ``frame`` into a staging copy of ``table`` and insert the rows whose key is new (in the
    caller's transaction when ``commit`` is false)."""
    columns = ", ".join(frame.columns)
    stage = copy_to_stage(conn, table, frame)
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT ({key}) DO NOTHING"
        )
        inserted = cur.rowcount
    if commit:
        conn.commit()
    return inserted


def _iso_us(times: np.ndarray) -> np.ndarray:
    """ISO 8601 with microseconds; a missing time is an empty field (NULL in CSV)."""
    return np.where(np.isnat(times), "", np.datetime_as_string(times, unit="us"))


def copy_to_stage(conn: Any, table: str, frame: pd.DataFrame) -> str:
    """COPY ``frame`` into an emptied temporary table shaped like ``table`` (rows go at commit); its name."""
    buffer = io.StringIO()
    # ISO timestamps with microseconds (vectorized: strftime per row costs more than the COPY itself);
    # Postgres reads them as timestamp without time zone
    naive = {
        c: _iso_us(frame[c].to_numpy("datetime64[us]"))
        for c in frame.columns
        if pd.api.types.is_datetime64_dtype(frame[c])
    }
    (frame.assign(**naive) if naive else frame).to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    stage = f"_stage_{table}"
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cur.execute(f"DELETE FROM {stage}")  # rows an earlier write of the same transaction staged
        cur.copy_expert(f"COPY {stage} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)", buffer)
    return stage


def write_transactions(target: Any, frames: pd.DataFrame | Iterable[pd.DataFrame]) -> int:
    """Store transaction events in ``transactions_raw`` (labels, if present, are not stored here).

    ``frames`` may be one frame or an iterable of frames (e.g. a day at a time from the simulator), each
    committed on its own. Returns the number of new rows.
    """
    batches = [frames] if isinstance(frames, pd.DataFrame) else frames
    inserted = 0
    with connect(target) as conn:
        for frame in batches:
            inserted += copy_upsert(conn, "transactions_raw", frame.loc[:, list(EVENT_COLUMNS)])
    return inserted


def write_labels(
    target: Any, labels: pd.DataFrame | Iterable[pd.DataFrame], source: str = "simulator"
) -> int:
    """Store label records (:func:`fraudops.labels.label_records`) in ``fraud_labels``; new rows only."""
    batches = [labels] if isinstance(labels, pd.DataFrame) else labels
    inserted = 0
    with connect(target) as conn:
        for frame in batches:
            rows = frame.loc[:, list(LABEL_RECORD_COLUMNS)].assign(source=source)
            inserted += copy_upsert(conn, "fraud_labels", rows)
    return inserted


def read_transactions(
    target: Any, start: datetime, end: datetime, *, labels_known_at: datetime | None = None
) -> pd.DataFrame:
    """Transactions with ``start <= tx_datetime < end`` and the labels published by ``labels_known_at``
    (default: all labels). A transaction whose label is not known yet gets ``tx_fraud`` = NaN."""
    cutoff = "AND l.available_at <= %(cutoff)s" if labels_known_at is not None else ""
    query = f"""
        SELECT {", ".join(f"t.{c}" for c in EVENT_COLUMNS)}, l.tx_fraud, l.tx_fraud_scenario
        FROM transactions_raw t
        LEFT JOIN fraud_labels l ON l.transaction_id = t.transaction_id {cutoff}
        WHERE t.tx_datetime >= %(start)s AND t.tx_datetime < %(end)s
        ORDER BY t.tx_datetime, t.transaction_id
    """
    with connect(target) as conn:
        with conn.cursor() as cur:
            sql = cur.mogrify(query, {"start": start, "end": end, "cutoff": labels_known_at}).decode()
            buffer = io.StringIO()
            cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
        conn.commit()
    buffer.seek(0)
    dtypes = pandas_dtypes(labels=False)
    frame = pd.read_csv(buffer, dtype={k: v for k, v in dtypes.items() if k != "tx_datetime"})
    # live events carry microseconds, simulated history whole seconds: one frame may hold both
    frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"], format="ISO8601")
    return frame


def read_customer_history(target: Any, start: datetime) -> pd.DataFrame:
    """``transaction_id``, ``customer_id``, ``tx_datetime`` and ``tx_amount`` of the transactions with
    ``tx_datetime > start``: what the scorer's in-memory customer windows start from."""
    frame = _copy_out(
        target,
        "SELECT transaction_id, customer_id, tx_datetime, tx_amount FROM transactions_raw"
        " WHERE tx_datetime > %(start)s",
        {"start": start},
        {"transaction_id": "str", "customer_id": "int64", "tx_amount": "float64"},
    )
    frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"], format="ISO8601")
    return frame


def _copy_out(target: Any, query: str, params: dict[str, Any], dtype: dict[str, str]) -> pd.DataFrame:
    """A query's rows through COPY (CSV): several times faster than fetching tuples for large reads."""
    with connect(target) as conn:
        with conn.cursor() as cur:
            sql = cur.mogrify(query, params).decode()
            buffer = io.StringIO()
            cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
        conn.commit()
    buffer.seek(0)
    # ids stay strings: "" and "NA" are ids, not missing values
    return pd.read_csv(buffer, dtype=dtype, keep_default_na=False, na_values={"tx_fraud": [""]})


def read_terminal_history(target: Any, start: datetime, end: datetime) -> pd.DataFrame:
    """``terminal_id``, ``tx_datetime`` and the published label (``tx_fraud``, NaN when not known) of the
    transactions with ``start < tx_datetime <= end``: what the scorer's delayed terminal table holds."""
    query = """
        SELECT t.terminal_id, t.tx_datetime, l.tx_fraud
        FROM transactions_raw t LEFT JOIN fraud_labels l ON l.transaction_id = t.transaction_id
        WHERE t.tx_datetime > %(start)s AND t.tx_datetime <= %(end)s
    """
    frame = _copy_out(
        target, query, {"start": start, "end": end}, {"terminal_id": "int64", "tx_fraud": "float64"}
    )
    # live events carry microseconds, simulated history whole seconds: one frame may hold both
    frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"], format="ISO8601")
    return frame


# what a retraining reads: the transactions and their labels
TRAINING_TABLES: tuple[str, ...] = ("transactions_raw", "fraud_labels")


def training_data_fingerprint(target: Any) -> dict[str, tuple[int, int]]:
    """Per training table: (rows, an order-free checksum of every row's content).

    Tests and benchmarks compare it before and after to prove they left the training data as they found
    it; a row added, removed or changed moves it.
    """
    require_tables(target, TRAINING_TABLES)
    out: dict[str, tuple[int, int]] = {}
    with connect(target) as conn, conn.cursor() as cur:
        for table in TRAINING_TABLES:
            cur.execute(
                f"SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM {table} t"  # noqa: S608
            )
            rows, checksum = cur.fetchone()
            out[table] = (int(rows), int(checksum))
        conn.commit()
    return out


def delete_transactions(target: Any, id_prefix: str, added_since: datetime | None = None) -> int:
    """Remove the transactions whose id starts with ``id_prefix`` (a test's or a benchmark's own stream)
    from every table, only those stored from ``added_since`` on when given; returns how many."""
    pattern = id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stamp = {  # when each table stored a row
        "fraud_alerts": "created_at",
        "transactions_with_score": "scored_at",
        "fraud_labels": "recorded_at",
        "transactions_raw": "ingested_at",
    }
    require_tables(target, stamp)
    with connect(target) as conn, conn.cursor() as cur:
        for table, column in stamp.items():
            since = f" AND {column} >= %(since)s" if added_since is not None else ""
            cur.execute(
                f"DELETE FROM {table} WHERE transaction_id LIKE %(pattern)s{since}",  # noqa: S608
                {"pattern": pattern, "since": added_since},
            )
        removed = cur.rowcount  # transactions_raw, the last one
        conn.commit()
    return removed


# -- what the demo and the history loader report ----------------------------------------------------------
def recent_history(target: Any, days: int = 2) -> tuple[int, datetime | None]:
    """How many stored transactions are from the last ``days`` days, and the newest one's time."""
    require_tables(target, ["transactions_raw"])
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), max(tx_datetime) FROM transactions_raw"
            " WHERE tx_datetime > now() - make_interval(days => %s)",
            (days,),
        )
        count, newest = cur.fetchone()
    return int(count), newest


def newest_simulated_day(target: Any, seed: int) -> str | None:
    """The newest ``yyyymmdd`` in the ids of the stored transactions of the simulated world ``seed``
    (simulated ids are ``<seed>-<yyyymmdd>-<n>``)."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT max(substring(transaction_id from '^[0-9]+-([0-9]{8})-')) FROM transactions_raw"
            " WHERE transaction_id LIKE %s",
            (f"{seed}-%",),
        )
        return cur.fetchone()[0]


def database_now(target: Any) -> datetime:
    """The database's clock (what the scorer's ``scored_at`` and the alerts' ``created_at`` use)."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT now()")
        return cur.fetchone()[0]


def scored_since(target: Any, since: datetime) -> dict[tuple[str, str], int]:
    """Transactions scored from ``since`` on, per (model version, decision)."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT model_version, decision, count(*) FROM transactions_with_score WHERE scored_at >= %s"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            (since,),
        )
        return {(v, d): int(n) for v, d, n in cur.fetchall()}


def latency_percentiles_ms(target: Any, since: datetime) -> tuple[float | None, float | None]:
    """End-to-end p50 and p99 (event time to stored score) of what was scored from ``since`` on. Event
    time is the producer's wall clock (naive UTC)."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM"
            " scored_at - (tx_datetime AT TIME ZONE 'UTC')) * 1000)"
            " FROM transactions_with_score WHERE scored_at >= %s",
            (since,),
        )
        p50, p99 = cur.fetchone()[0] or (None, None)
    return p50, p99


def alerts_since(target: Any, since: datetime) -> dict[str, int]:
    """Alerts raised from ``since`` on, per decision."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT decision, count(*) FROM fraud_alerts WHERE created_at >= %s GROUP BY 1", (since,))
        return {d: int(n) for d, n in cur.fetchall()}


def labels_since(target: Any, since: datetime) -> tuple[int, datetime | None]:
    """Labels recorded from ``since`` on, and the earliest time one of them is published."""
    with connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), min(available_at) FROM fraud_labels WHERE recorded_at >= %s", (since,))
        count, known_from = cur.fetchone()
    return int(count), known_from
