"""Load transactions from outside (CSV or Parquet) into the schema's frame, so the whole pipeline runs on
a user's own data.

A column mapping renames source columns to schema fields; fields not mapped are matched by name,
ignoring case (so files in the simulator handbook's upper-case layout load without a mapping). Label
columns are optional. Ids that are not integers (hashed card numbers, "T-123") are turned into stable
63-bit integers, the same value for the same id in every file and run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fraudops.schema import EVENT_COLUMNS, LABEL_COLUMNS, UNKNOWN_SCENARIO, conform

_ID_COLUMNS = ("customer_id", "terminal_id")


def read_table(path: str | Path, file_format: str | None = None) -> pd.DataFrame:
    """A CSV or Parquet file (by ``file_format`` or the file extension) as a frame."""
    fmt = (file_format or Path(path).suffix.lstrip(".")).lower()
    if fmt in ("parquet", "pq"):
        return pd.read_parquet(path)
    if fmt in ("csv", "txt", "gz"):
        return pd.read_csv(path)
    raise ValueError(f"cannot tell the format of {path}: pass file_format='csv' or 'parquet'")


def _resolve_mapping(columns: list[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """source column -> schema field, for every schema field found."""
    fields = EVENT_COLUMNS + LABEL_COLUMNS
    unknown_targets = sorted(set(mapping.values()) - set(fields))
    if unknown_targets:
        raise ValueError(f"mapping targets {unknown_targets} are not schema fields {list(fields)}")
    missing_sources = sorted(set(mapping) - set(columns))
    if missing_sources:
        raise ValueError(f"mapped column(s) {missing_sources} are not in the input {columns}")
    resolved = dict(mapping)
    by_lower = {c.lower(): c for c in columns if c not in mapping}
    for field in fields:
        if field not in resolved.values() and field in by_lower:
            resolved[by_lower[field]] = field
    return resolved


def stable_int_ids(values: pd.Series) -> np.ndarray:
    """Integer ids as they are; anything else hashed to a stable non-negative int63."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and (numeric % 1 == 0).all() and (numeric >= 0).all():
        return numeric.to_numpy(dtype=np.int64)
    hashed = pd.util.hash_pandas_object(values.astype("string"), index=False).to_numpy(dtype=np.uint64)
    return (hashed >> np.uint64(1)).astype(np.int64)


def to_transactions(raw: pd.DataFrame, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rename, convert and validate an outside frame into the schema's transactions frame."""
    resolved = _resolve_mapping(list(raw.columns), mapping or {})
    frame = raw.loc[:, list(resolved)].rename(columns=resolved)
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"no column for field(s) {missing}: add them to the mapping (source=field)")

    frame["transaction_id"] = frame["transaction_id"].astype("string")
    times = pd.to_datetime(frame["tx_datetime"], utc=True, format="mixed")
    frame["tx_datetime"] = times.dt.tz_convert("UTC").dt.tz_localize(None)
    for column in _ID_COLUMNS:
        frame[column] = stable_int_ids(frame[column])
    frame["tx_amount"] = pd.to_numeric(frame["tx_amount"], errors="raise").astype("float64")
    if "tx_fraud" in frame.columns:
        fraud = pd.to_numeric(frame["tx_fraud"], errors="raise")
        frame["tx_fraud"] = fraud
        if "tx_fraud_scenario" not in frame.columns:
            frame["tx_fraud_scenario"] = np.where(fraud > 0, UNKNOWN_SCENARIO, 0)
    elif "tx_fraud_scenario" in frame.columns:
        frame = frame.drop(columns="tx_fraud_scenario")
    return conform(frame).sort_values(["tx_datetime", "transaction_id"], ignore_index=True)


def import_transactions(
    path: str | Path, mapping: Mapping[str, str] | None = None, *, file_format: str | None = None
) -> pd.DataFrame:
    """Read an outside CSV/Parquet file into the schema's transactions frame (raises on bad data)."""
    return to_transactions(read_table(path, file_format), mapping)
