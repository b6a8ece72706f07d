"""The audit log of model decisions: every evaluation, promotion, rejection and rollback, with its
metrics, in the fraud database's ``model_metadata`` table.

A row the pipeline writes carries a key (the pipeline run, the task, and the family or version it is
about): a retried task writes the same keys, so its rows replace the earlier attempt's instead of
duplicating them. Rows of manual commands carry no key: each command is an event of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from fraudops.config.settings import Settings


@dataclass(frozen=True)
class AuditRow:
    event: str  # evaluation, promotion, rejection, rollback
    model_version: str | None = None
    run_id: str | None = None
    family: str | None = None
    alias: str | None = None
    decision: str | None = None
    reason: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    data_snapshot: str | None = None
    key: str | None = None


def row_key(run_key: str | None, task: str, subject: str = "") -> str | None:
    """The key of a pipeline row: the same on every attempt of the task; None outside a pipeline run."""
    if not run_key:
        return None
    return f"{run_key}/{task}" + (f"/{subject}" if subject else "")


class AuditLog(Protocol):
    def record(self, rows: Sequence[AuditRow]) -> None: ...


_COLUMNS = (
    "model_name", "model_version", "run_id", "family", "event", "alias", "decision", "reason", "metrics",
    "data_snapshot", "event_key",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO model_metadata ({', '.join(_COLUMNS)}) VALUES ({', '.join(f'%({c})s' for c in _COLUMNS)})"
    " ON CONFLICT (model_name, event_key) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:-1])
    + ", created_at = now()"
)


class PostgresAudit:
    """``model_metadata`` in the fraud database, written as the retraining pipeline's role."""

    def __init__(self, settings: Settings, secrets: Mapping[str, str]) -> None:
        self.settings, self.secrets = settings, secrets
        self.model_name = settings.mlflow.model_name

    def record(self, rows: Sequence[AuditRow]) -> None:
        from fraudops import fraud_db
        from fraudops.connections import pipeline_dsn

        dsn = pipeline_dsn(self.settings, self.secrets)
        fraud_db.require_tables(dsn, ["model_metadata"])
        with fraud_db.connect(dsn) as conn, conn.cursor() as cur:
            for row in rows:
                values = asdict(row)
                values["event_key"] = values.pop("key")
                values["metrics"] = json.dumps(dict(row.metrics), default=float)
                cur.execute(_UPSERT, {"model_name": self.model_name, **values})
            conn.commit()
