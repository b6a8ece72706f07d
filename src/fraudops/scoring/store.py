"""The scorer's Postgres side: one micro-batch is one transaction over all its tables.

A micro-batch writes ``transactions_raw``, ``transactions_with_score``, ``fraud_alerts`` (derived from the
stored decisions) and its row in ``scorer_batches`` together or not at all, and gives back what Postgres
holds for its transaction ids (this attempt's rows when all of them were new, else read back). Those
rows, not the current attempt's scores, are what goes to ``fraud_predictions``: a batch that Spark
replays after a crash, perhaps under another champion, re-emits the decisions already committed, so
Postgres, the alerts and the Kafka predictions tell the same story.

A transaction id is a promise about content: the same id with the same event is a re-delivery (a no-op);
the same id with another event is a *conflicting duplicate*, which is refused (a dead letter) instead of
being silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fraudops import fraud_db
from fraudops.schema import EVENT_COLUMNS

# what the scorer sends on for a transaction, as Postgres holds it
COMMITTED_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "customer_id",
    "score",
    "decision",
    "model_name",
    "model_version",
    "scored_at",
)
_ALERT_COLUMNS = ", ".join([*EVENT_COLUMNS, "score", "decision", "model_name", "model_version"])
_EVENTS = ", ".join(EVENT_COLUMNS)
CONFLICT_REASON = "conflicting duplicate: transaction id {id} already seen with other content"


@dataclass(frozen=True)
class Committed:
    """What Postgres holds after a micro-batch: one row per accepted transaction id
    (:data:`COMMITTED_COLUMNS`), and which of the offered events conflicted with stored ones."""

    predictions: pd.DataFrame
    conflicts: np.ndarray  # bool, aligned with the events offered


class BatchStore(Protocol):
    def commit(
        self,
        batch_id: int,
        events: pd.DataFrame,
        scored: pd.DataFrame,
        *,
        records: int,
        dead_letters: int,
        model_version: str,
    ) -> Committed: ...


def same_content(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """Row-wise: do two aligned event frames hold the same event (every :data:`EVENT_COLUMNS` equal)?"""
    equal = np.ones(len(left), dtype=bool)
    for column in EVENT_COLUMNS:
        equal &= left[column].to_numpy() == right[column].to_numpy()
    return equal


def split_batch_duplicates(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Within one micro-batch: (first occurrence of each id, later occurrences with other content).

    Later occurrences with the same content are re-deliveries and in neither mask. ``events`` is in
    arrival order (the first occurrence wins, as it would had they come in two batches).
    """
    ids = events["transaction_id"]
    first = ~ids.duplicated(keep="first").to_numpy() if len(ids) else np.zeros(0, bool)
    conflicts = np.zeros(len(events), dtype=bool)
    if first.all():
        return first, conflicts
    conflicts[~first] = conflicts_with(events.loc[~first], events.loc[first].set_index("transaction_id"))
    return first, conflicts


def conflicts_with(events: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """Row-wise: is the event's id in ``reference`` (events indexed by unique transaction id) with other
    content?"""
    conflicts = np.zeros(len(events), dtype=bool)
    known = events["transaction_id"].isin(reference.index).to_numpy()
    if known.any():
        theirs = reference.loc[events.loc[known, "transaction_id"].to_numpy()].reset_index()
        conflicts[known] = ~same_content(events.loc[known].reset_index(drop=True), theirs)
    return conflicts


class PostgresStore:
    """:class:`BatchStore` on the ``fraud`` database, one connection kept across micro-batches."""

    def __init__(self, dsn: str, checkpoint: str) -> None:
        self.dsn, self.checkpoint = dsn, checkpoint
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg2

            self._conn = psycopg2.connect(self.dsn)
        return self._conn

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()

    def commit(
        self,
        batch_id: int,
        events: pd.DataFrame,
        scored: pd.DataFrame,
        *,
        records: int,
        dead_letters: int,
        model_version: str,
    ) -> Committed:
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                conflicts = conflicts_with(events, _stored_events(cur, events["transaction_id"].tolist()))
                accepted = scored.loc[~conflicts]
                accepted_ids = accepted["transaction_id"].tolist()
                inserted = 0
                if len(accepted):
                    # staged once: the raw event and the scored row are the same rows' columns
                    stage = fraud_db.copy_to_stage(conn, "transactions_with_score", accepted)
                    cur.execute(
                        f"INSERT INTO transactions_raw ({_EVENTS}) SELECT {_EVENTS} FROM {stage}"  # noqa: S608
                        " ON CONFLICT (transaction_id) DO NOTHING"
                    )
                    columns = ", ".join(accepted.columns)
                    cur.execute(
                        f"INSERT INTO transactions_with_score ({columns}) SELECT {columns}"  # noqa: S608
                        f" FROM {stage} ON CONFLICT (transaction_id) DO NOTHING"
                    )
                    inserted = cur.rowcount
                # every row new (the usual case): Postgres holds exactly this attempt's rows, stamped with
                # the transaction's time; otherwise (a replay, a re-delivery) it is read back
                fresh = inserted == len(accepted)
                flagged = (
                    accepted.loc[accepted["decision"] != "APPROVE", "transaction_id"].tolist()
                    if fresh
                    else accepted_ids
                )
                # alerts come from the committed decisions, never from this attempt's: a replayed batch
                # under another champion must not raise an alert for a transaction stored as APPROVE
                if flagged:
                    cur.execute(
                        f"INSERT INTO fraud_alerts ({_ALERT_COLUMNS}) SELECT {_ALERT_COLUMNS}"  # noqa: S608
                        " FROM transactions_with_score WHERE transaction_id = ANY(%s)"
                        " AND decision <> 'APPROVE' ON CONFLICT (transaction_id) DO NOTHING",
                        (flagged,),
                    )
                cur.execute(
                    "INSERT INTO scorer_batches (checkpoint, batch_id, records, inserted, dead_letters,"
                    " model_version) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (checkpoint, batch_id)"
                    " DO UPDATE SET attempts = scorer_batches.attempts + 1, committed_at = now()"
                    " RETURNING now()",
                    (
                        self.checkpoint,
                        batch_id,
                        records,
                        inserted,
                        dead_letters + int(conflicts.sum()),
                        model_version,
                    ),
                )
                now = cur.fetchone()[0]
                if fresh:
                    predictions = accepted.assign(scored_at=now).loc[:, list(COMMITTED_COLUMNS)]
                    predictions = predictions.reset_index(drop=True)
                else:
                    cur.execute(
                        f"SELECT {', '.join(COMMITTED_COLUMNS)} FROM transactions_with_score"  # noqa: S608
                        " WHERE transaction_id = ANY(%s)",
                        (accepted_ids,),
                    )
                    predictions = pd.DataFrame(cur.fetchall(), columns=list(COMMITTED_COLUMNS))
            conn.commit()
        except BaseException:
            # a broken connection is reopened on the next batch; nothing of this one was committed
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 -- the connection is gone: closing it is all that is left
                conn.close()
            raise
        return Committed(predictions, conflicts)


def _stored_events(cur: Any, ids: list[str]) -> pd.DataFrame:
    """The stored events among ``ids``, indexed by transaction id (event times naive UTC)."""
    cur.execute(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM transactions_raw WHERE transaction_id = ANY(%s)",  # noqa: S608
        (ids,),
    )
    frame = pd.DataFrame(cur.fetchall(), columns=list(EVENT_COLUMNS))
    if len(frame):
        frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"])
        frame["tx_amount"] = frame["tx_amount"].astype(np.float64)
        frame["customer_id"] = frame["customer_id"].astype(np.int64)
        frame["terminal_id"] = frame["terminal_id"].astype(np.int64)
    return frame.set_index("transaction_id")
