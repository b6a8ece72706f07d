"""What the console reads from the ``fraud`` database and the one thing it writes (analyst labels).

Each read is a SQL builder (pure, unit-tested) and a small function that runs it on a DBAPI connection;
the shaping of what comes back (rates, histograms, reason codes) is pure pandas/numpy in
:mod:`fraudops.console.views`. The pages (:mod:`fraudops.console.app`) only call these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from fraudops.decisions import DECISIONS
from fraudops.labels import ANALYST_SOURCE, overridable_by
from fraudops.schema import EVENT_COLUMNS

ALERT_DECISIONS: tuple[str, ...] = tuple(d for d in DECISIONS if d != "APPROVE")
VERDICTS: dict[str, int] = {"fraud": 1, "genuine": 0}
# the alert's status once an analyst gave a verdict on its transaction
_ALERT_STATUS = {1: "confirmed_fraud", 0: "false_positive"}
MAX_PAGE_SIZE = 500
MAX_NOTE = 2000
# the console's tables: what its Postgres role may read (fraudops.stack.postgres grants exactly these)
READ_TABLES: tuple[str, ...] = (
    "transactions_with_score",
    "fraud_alerts",
    "fraud_labels",
    "model_metadata",
    "scorer_batches",
)


@dataclass(frozen=True)
class AlertFilter:
    decisions: tuple[str, ...] = ALERT_DECISIONS
    since: datetime | None = None
    until: datetime | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    customer_id: int | None = None
    terminal_id: int | None = None
    statuses: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        unknown = set(self.decisions) - set(ALERT_DECISIONS)
        if unknown or not self.decisions:
            raise ValueError(f"decisions must be among {', '.join(ALERT_DECISIONS)}")
        if self.min_amount is not None and self.max_amount is not None and self.min_amount > self.max_amount:
            raise ValueError("the minimum amount is above the maximum")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("the start of the time range is after its end")


def alerts_query(flt: AlertFilter, page: int, page_size: int) -> tuple[str, dict[str, Any]]:
    """Newest alerts first (event time, then alert id so a page boundary is stable), one page of them,
    each with the label its transaction has, if any."""
    if page < 0 or not 0 < page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page >= 0 and 0 < page_size <= {MAX_PAGE_SIZE}")
    where = ["a.decision = ANY(%(decisions)s)"]
    params: dict[str, Any] = {"decisions": list(flt.decisions)}
    for column, op, name in (
        ("a.tx_datetime", ">=", "since"),
        ("a.tx_datetime", "<", "until"),
        ("a.tx_amount", ">=", "min_amount"),
        ("a.tx_amount", "<=", "max_amount"),
        ("a.customer_id", "=", "customer_id"),
        ("a.terminal_id", "=", "terminal_id"),
    ):
        value = getattr(flt, name)
        if value is not None:
            where.append(f"{column} {op} %({name})s")
            params[name] = value
    if flt.statuses:
        where.append("a.status = ANY(%(statuses)s)")
        params["statuses"] = list(flt.statuses)
    params.update(limit=page_size, offset=page * page_size)
    sql = (
        "SELECT a.alert_id, a.transaction_id, a.tx_datetime, a.customer_id, a.terminal_id, a.tx_amount,"
        " a.score, a.decision, a.model_version, a.status, a.created_at,"
        " l.tx_fraud AS label, l.source AS label_source, l.labelled_by"
        " FROM fraud_alerts a LEFT JOIN fraud_labels l ON l.transaction_id = a.transaction_id"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY a.tx_datetime DESC, a.alert_id DESC LIMIT %(limit)s OFFSET %(offset)s"
    )
    return sql, params


TRANSACTION_SQL = (
    f"SELECT {', '.join(f's.{c}' for c in EVENT_COLUMNS)}, s.score, s.decision, s.model_name,"
    " s.model_version, s.features, s.latency_ms, s.scored_at,"
    " a.alert_id, a.status AS alert_status,"
    " l.tx_fraud AS label, l.source AS label_source, l.labelled_by, l.note AS label_note,"
    " l.recorded_at AS labelled_at, l.available_at AS label_available_at"
    " FROM transactions_with_score s"
    " LEFT JOIN fraud_alerts a ON a.transaction_id = s.transaction_id"
    " LEFT JOIN fraud_labels l ON l.transaction_id = s.transaction_id"
    " WHERE s.transaction_id = %(transaction_id)s"
)


def _rows(conn: Any, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        columns = [d[0] for d in cur.description]
        rows = cur.fetchall()
    conn.rollback()  # read-only: end the transaction so no snapshot is held between page loads
    return pd.DataFrame.from_records(rows, columns=columns)


def find_transaction(conn: Any, transaction_id: str) -> dict[str, Any] | None:
    """The scored transaction with its features, alert and label; None when no such id was scored."""
    frame = _rows(conn, TRANSACTION_SQL, {"transaction_id": transaction_id})
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    if isinstance(row.get("features"), str):
        row["features"] = json.loads(row["features"])
    return row


def list_alerts(conn: Any, flt: AlertFilter, page: int = 0, page_size: int = 50) -> pd.DataFrame:
    sql, params = alerts_query(flt, page, page_size)
    return _rows(conn, sql, params)


def decision_counts(conn: Any, since: datetime, bucket: str = "minute") -> pd.DataFrame:
    """Per time bucket of scoring (``scored_at``) and decision: count, mean latency and p95 latency."""
    if bucket not in ("minute", "hour", "day"):
        raise ValueError("bucket is minute, hour or day")
    sql = (
        "SELECT date_trunc(%(bucket)s, scored_at) AS bucket, decision, count(*) AS n,"
        " avg(latency_ms) AS latency_mean_ms,"
        " percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS latency_p95_ms"
        " FROM transactions_with_score WHERE scored_at >= %(since)s GROUP BY 1, 2 ORDER BY 1, 2"
    )
    return _rows(conn, sql, {"bucket": bucket, "since": since})


def score_histogram(conn: Any, since: datetime, bins: int = 20) -> pd.DataFrame:
    """How many transactions scored since ``since`` fall in each of ``bins`` equal score bins."""
    sql = (
        "SELECT least(width_bucket(score, 0, 1, %(bins)s), %(bins)s) AS bin, count(*) AS n"
        " FROM transactions_with_score WHERE scored_at >= %(since)s GROUP BY 1 ORDER BY 1"
    )
    return _rows(conn, sql, {"bins": bins, "since": since})


def model_history(conn: Any, model_name: str, limit: int = 200) -> pd.DataFrame:
    sql = (
        "SELECT id, created_at, event, model_version, family, alias, decision, reason, run_id, metrics,"
        " data_snapshot FROM model_metadata WHERE model_name = %(name)s"
        " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
    )
    return _rows(conn, sql, {"name": model_name, "limit": limit})


def scored_by_version(conn: Any, since: datetime) -> pd.DataFrame:
    sql = (
        "SELECT model_version, count(*) AS n, min(scored_at) AS first, max(scored_at) AS last"
        " FROM transactions_with_score WHERE scored_at >= %(since)s GROUP BY 1 ORDER BY 3"
    )
    return _rows(conn, sql, {"since": since})


def recent_labels(conn: Any, limit: int = 50) -> pd.DataFrame:
    sql = (
        "SELECT transaction_id, tx_fraud, labelled_by, note, recorded_at FROM fraud_labels"
        " WHERE source = %(source)s ORDER BY recorded_at DESC LIMIT %(limit)s"
    )
    return _rows(conn, sql, {"source": ANALYST_SOURCE, "limit": limit})


# -- the write ---------------------------------------------------------------------------------------------

LABEL_UPSERT_SQL = (
    "INSERT INTO fraud_labels AS l (transaction_id, tx_fraud, tx_fraud_scenario, available_at, source,"
    " labelled_by, note, recorded_at)"
    " VALUES (%(transaction_id)s, %(tx_fraud)s, 0, (now() AT TIME ZONE 'UTC'), %(source)s, %(who)s,"
    " %(note)s, now())"
    " ON CONFLICT (transaction_id) DO UPDATE SET tx_fraud = EXCLUDED.tx_fraud,"
    " tx_fraud_scenario = EXCLUDED.tx_fraud_scenario, available_at = EXCLUDED.available_at,"
    " source = EXCLUDED.source, labelled_by = EXCLUDED.labelled_by, note = EXCLUDED.note,"
    " recorded_at = EXCLUDED.recorded_at"
    # a weaker source's label is replaced (fraudops.labels.prevails); the same verdict again is a no-op
    " WHERE l.source = ANY(%(overridable)s) AND (l.source, l.tx_fraud, l.labelled_by, l.note)"
    " IS DISTINCT FROM (EXCLUDED.source, EXCLUDED.tx_fraud, EXCLUDED.labelled_by, EXCLUDED.note)"
)


def check_verdict(verdict: str, note: str) -> int:
    if verdict not in VERDICTS:
        raise ValueError(f"verdict is one of {', '.join(VERDICTS)}, not {verdict!r}")
    if len(note) > MAX_NOTE:
        raise ValueError(f"a note has at most {MAX_NOTE} characters")
    return VERDICTS[verdict]


def write_label(conn: Any, transaction_id: str, verdict: str, who: str, note: str = "") -> bool:
    """Store an analyst's verdict on a scored transaction in ``fraud_labels`` (and close its alert).

    Returns whether anything changed: submitting the same verdict twice changes nothing the second time.
    Callers check the person's role first (:func:`fraudops.console.feedback.submit_label`).
    """
    tx_fraud = check_verdict(verdict, note)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM transactions_with_score WHERE transaction_id = %(id)s", {"id": transaction_id}
        )
        if cur.fetchone() is None:
            conn.rollback()
            raise LookupError(f"no scored transaction {transaction_id!r}")
        cur.execute(
            LABEL_UPSERT_SQL,
            {
                "transaction_id": transaction_id,
                "tx_fraud": tx_fraud,
                "source": ANALYST_SOURCE,
                "who": who,
                "note": note,
                "overridable": overridable_by(ANALYST_SOURCE),
            },
        )
        changed = cur.rowcount > 0
        cur.execute(
            "UPDATE fraud_alerts SET status = %(status)s WHERE transaction_id = %(id)s"
            " AND status IS DISTINCT FROM %(status)s",
            {"status": _ALERT_STATUS[tx_fraud], "id": transaction_id},
        )
    conn.commit()
    return changed
