"""One micro-batch, computed: Kafka records in; events, scores, decisions, alerts and dead letters out.

No Spark, Postgres or Kafka here (the tables' loaders are passed in), so the whole step runs on static
frames in the unit tests. :mod:`fraudops.scoring.sinks` writes what this returns.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraudops.config.model import Thresholds
from fraudops.decisions import decide
from fraudops.features import FEATURE_NAMES, transaction_features
from fraudops.schema import EVENT_COLUMNS, printable
from fraudops.scoring.champion import LoadedModel
from fraudops.scoring.customers import CustomerWindows
from fraudops.scoring.parse import EventTimeWindow, validate_frame
from fraudops.scoring.store import CONFLICT_REASON, split_batch_duplicates
from fraudops.scoring.terminals import TerminalTable

_US_PER_SECOND = 1_000_000
# a dead letter's encoded JSON stays under this, well inside what the broker and the client accept (~1 MB):
# a record that cannot be sent would fail the micro-batch
MAX_DEAD_LETTER_BYTES = 512 * 1024


@dataclass(frozen=True)
class ScoredBatch:
    """A micro-batch's outcome before any write.

    ``events`` (the :data:`~fraudops.schema.EVENT_COLUMNS`), ``scored`` (the ``transactions_with_score``
    rows), ``produced_ms`` (each event's Kafka record time) and ``parsed`` (its parsed Kafka record) are
    aligned, one row per accepted transaction id; ``rejected`` holds the parsed records that become dead
    letters, with their reason.
    """

    events: pd.DataFrame
    parsed: pd.DataFrame
    scored: pd.DataFrame
    produced_ms: np.ndarray
    rejected: pd.DataFrame
    model_version: str

    @property
    def alerts(self) -> pd.DataFrame:
        """The REVIEW and BLOCK decisions of this computation (the store raises alerts from what it
        commits, which for a replayed batch may be an earlier attempt's)."""
        return self.scored.loc[self.scored["decision"] != "APPROVE"]


def score_batch(
    records: pd.DataFrame,
    customers: CustomerWindows,
    terminals: TerminalTable,
    model: LoadedModel,
    thresholds: Thresholds,
    window: EventTimeWindow,
    now_ms: int,
    row_at_a_time: bool = False,
    lap: Callable[[str], None] = lambda stage: None,
) -> ScoredBatch:
    """Kafka records (value, topic, partition, offset, kafka_ts_ms) -> :class:`ScoredBatch`.

    Brings the customer and terminal tables up to the batch's event times (through their loaders), then
    computes every feature of the batch in one vectorized pass and scores it in one booster call.
    ``lap(stage)`` is called as each stage ends (parse, features, model), for the timings.
    """
    parsed = validate_frame(records, window)
    ok = parsed["ok"].to_numpy(dtype=bool)
    rejected = [parsed.loc[~ok]]
    # in arrival order, so that of two events with one id the first sent is kept, as across batches
    good = parsed.loc[ok].sort_values(["kafka_ts_ms", "partition", "offset"], kind="stable")
    good = good.reset_index(drop=True)
    first, conflicting = split_batch_duplicates(events_frame(good))
    rejected.append(conflicts(good.loc[conflicting]))
    good = good.loc[first].reset_index(drop=True)
    events = events_frame(good)
    produced_ms = good["kafka_ts_ms"].to_numpy(np.float64)
    info = model.info
    lap("parse")
    if len(good):
        seconds = good["tx_time_us"].to_numpy(np.int64) // _US_PER_SECOND
        customers.refresh(int(seconds.min()))
        terminals.refresh(int(seconds.min()), int(seconds.max()))
        features = assemble_features(
            events, customers.features(events), terminals.features(events["terminal_id"].to_numpy(), seconds)
        )
        lap("features")
        scores, decisions = score(model, features, thresholds, row_at_a_time)
        feature_json = features.to_json(orient="records", lines=True, double_precision=15).splitlines()
    else:  # only dead letters: the batch is still recorded
        scores, decisions, feature_json = np.empty(0), np.empty(0, dtype=object), []
    lap("model")
    scored = events.assign(
        score=scores,
        decision=decisions,
        model_name=info.name,
        model_version=info.version,
        features=feature_json,
        latency_ms=now_ms - produced_ms,
    )
    return ScoredBatch(
        events, good, scored, produced_ms, pd.concat(rejected, ignore_index=True), info.version
    )


def events_frame(good: pd.DataFrame) -> pd.DataFrame:
    """Valid parsed rows -> the event columns of the schema (``tx_datetime`` naive UTC)."""
    events = pd.DataFrame(
        {
            "transaction_id": good["transaction_id"].astype(str).to_numpy(),
            "tx_datetime": pd.to_datetime(good["tx_time_us"].to_numpy(np.int64), unit="us"),
            "customer_id": good["customer_id"].to_numpy(np.int64),
            "terminal_id": good["terminal_id"].to_numpy(np.int64),
            "tx_amount": good["tx_amount"].to_numpy(np.float64),
        }
    )
    return events.loc[:, list(EVENT_COLUMNS)]


def assemble_features(
    events: pd.DataFrame, customer: dict[str, np.ndarray], terminal: dict[str, np.ndarray]
) -> pd.DataFrame:
    """:data:`FEATURE_NAMES` of the events: per-transaction ones, the customer and terminal windows."""
    columns: dict[str, np.ndarray] = dict(
        transaction_features(events["tx_datetime"], events["tx_amount"].to_numpy(np.float64))
    )
    columns.update(customer)
    columns.update(terminal)
    return pd.DataFrame({name: columns[name] for name in FEATURE_NAMES})


def score(
    model: LoadedModel, features: pd.DataFrame, thresholds: Thresholds, row_at_a_time: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The whole micro-batch through the native booster at once; scores and decisions. ``row_at_a_time``
    calls the booster once per row instead: the baseline the vectorized path is measured against."""
    if features.empty:
        return np.empty(0), np.empty(0, dtype=object)
    # the model's own columns (a champion trained before features were added reads fewer)
    matrix = features.loc[:, list(model.model.feature_names)].to_numpy(np.float32)
    if row_at_a_time:
        raw = np.concatenate([np.asarray(model.model.predict(matrix[i : i + 1])) for i in range(len(matrix))])
    else:
        raw = np.asarray(model.model.predict(matrix))
    scores = np.clip(raw.astype(np.float64), 0, 1)
    return scores, decide(scores, thresholds)


def conflicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Parsed rows refused as conflicting duplicates, with that reason (for :func:`dead_letters`)."""
    return rows.assign(reason=[CONFLICT_REASON.format(id=printable(i, 80)) for i in rows["transaction_id"]])


def prediction_messages(
    committed: pd.DataFrame, produced_ms: dict[str, float], batch_id: int
) -> tuple[list[str], list[str]]:
    """(keys, JSON values) for ``fraud_predictions``, built in one pass from what Postgres committed
    (``store.COMMITTED_COLUMNS``); ``produced_ms`` maps an id to its Kafka record time. Scores keep every
    digit (``repr``), so a consumer reads the very number Postgres holds."""
    if committed.empty:
        return [], []
    ids = committed["transaction_id"].astype(str).tolist()
    scored_at_ms = (
        (pd.to_datetime(committed["scored_at"], utc=True) - pd.Timestamp(0, tz="UTC"))
        // pd.Timedelta(1, "ms")
    ).tolist()
    values = []
    for tx_id, customer, score_, decision, name, version, at_ms in zip(
        ids,
        committed["customer_id"].astype("int64").tolist(),
        committed["score"].astype("float64").tolist(),
        committed["decision"].tolist(),
        committed["model_name"].tolist(),
        committed["model_version"].tolist(),
        scored_at_ms,
        strict=True,
    ):
        sent = produced_ms.get(tx_id, math.nan)
        values.append(
            f'{{"transaction_id": {json.dumps(tx_id)}, "customer_id": {customer}, "score": {score_!r}, '
            f'"decision": {json.dumps(decision)}, "model_name": {json.dumps(name)}, '
            f'"model_version": {json.dumps(version)}, "batch_id": {batch_id}, '
            f'"produced_at_ms": {"null" if math.isnan(sent) else int(sent)}, "scored_at_ms": {at_ms}}}'
        )
    return ids, values


def dead_letters(bad: pd.DataFrame, failed_at_ms: int) -> list[str]:
    """Dead-letter records as JSON: original payload (UTF-8, else base64), reason, and where it came from.

    Each is at most :data:`MAX_DEAD_LETTER_BYTES` encoded, whatever the payload: a payload that would
    make it larger is cut (``payload_truncated``), so a dead letter can always be sent.
    """
    return [
        _dead_letter(
            {
                "reason": row.reason,
                "source_topic": row.topic,
                "source_partition": int(row.partition),
                "source_offset": int(row.offset),
                "produced_at_ms": None if pd.isna(row.kafka_ts_ms) else int(row.kafka_ts_ms),
                "failed_at_ms": failed_at_ms,
            },
            bytes(row.payload) if row.payload is not None else b"",
        )
        for row in bad.itertuples(index=False)
    ]


def _dead_letter(record: dict[str, Any], raw: bytes) -> str:
    keep = len(raw)
    while True:
        part = raw[:keep]
        try:
            payload, encoding = part.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            payload, encoding = base64.b64encode(part).decode("ascii"), "base64"
        text = json.dumps(
            {**record, "payload": payload, "payload_encoding": encoding, "payload_truncated": keep < len(raw)}
        )
        if len(text) <= MAX_DEAD_LETTER_BYTES:  # ASCII: json.dumps escapes every other character
            return text
        # escapes take 1 to 12 characters per payload byte: shrink in proportion, with room for the rest
        keep = max(0, min(keep - 1, int(keep * (MAX_DEAD_LETTER_BYTES - 4096) / len(text))))
