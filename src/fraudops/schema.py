"""The one definition of a transaction event and of its labels.

Producer, importer, trainer and the streaming scorer all derive what they need from :data:`EVENT_FIELDS`
and :data:`LABEL_FIELDS`: event validation (:func:`validate_event`), frame validation
(:func:`frame_problems`) and the pandas dtypes (:func:`pandas_dtypes`). Nothing else spells out the
fields.

Times are UTC. On the wire ``tx_datetime`` is an ISO-8601 string; in frames it is a naive
``datetime64[ns]`` holding UTC, because the simulator, Parquet snapshots and Postgres ``timestamp``
columns all carry no zone and mixing aware and naive values is the classic source of off-by-hours bugs.
Labels are kept apart from the event: a live transaction never carries its own fate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Kind = Literal["string", "timestamp", "int", "float"]

# An event is a handful of short fields (~150 bytes); anything far larger is garbage or an attack.
MAX_EVENT_BYTES = 4096
# Bounded so that a corrupt amount (1e300, a unit mix-up) is rejected at the door instead of skewing
# customer averages for the next 30 days.
MAX_AMOUNT = 1_000_000.0
MAX_ID_LENGTH = 64
# ids are non-negative 63-bit integers, so they fit Postgres bigint, Spark LongType and pandas int64
MAX_INT_ID = 2**63 - 1
# event times outside these bounds are garbage whatever else is known: inside them every stage (epoch
# microseconds, pandas nanoseconds, Arrow, Postgres) holds them; the scorer narrows them further around
# each record's Kafka time
MIN_EVENT_TIME = datetime(1970, 1, 1)
MAX_EVENT_TIME = datetime(2200, 1, 1)
# what a reason quotes of a bad value
_QUOTE_CHARS = 40


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    description: str
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None


EVENT_FIELDS: tuple[Field, ...] = (
    Field("transaction_id", "string", "unique id of the transaction", max_length=MAX_ID_LENGTH),
    Field("tx_datetime", "timestamp", "when the transaction happened (UTC)"),
    Field("customer_id", "int", "card / customer id", minimum=0, maximum=MAX_INT_ID),
    Field("terminal_id", "int", "payment terminal id", minimum=0, maximum=MAX_INT_ID),
    Field("tx_amount", "float", "amount in the card currency", minimum=0.0, maximum=MAX_AMOUNT),
)

# 0 = genuine; 1..3 = the simulator scenario that made it fraud; -1 = fraud of unknown origin (imported)
UNKNOWN_SCENARIO = -1
LABEL_FIELDS: tuple[Field, ...] = (
    Field("tx_fraud", "int", "1 if the transaction is fraud", minimum=0, maximum=1),
    Field("tx_fraud_scenario", "int", "what made it fraud; 0 = genuine", minimum=-1, maximum=3),
)

EVENT_COLUMNS: tuple[str, ...] = tuple(f.name for f in EVENT_FIELDS)
LABEL_COLUMNS: tuple[str, ...] = tuple(f.name for f in LABEL_FIELDS)
# the Kafka message key: all events of one card land on one partition, in order
EVENT_KEY = "customer_id"

_PANDAS_DTYPES: dict[Kind, str] = {
    # Arrow-backed: a fraction of the memory and time of Python string objects for millions of ids
    "string": "string[pyarrow]",
    "timestamp": "datetime64[ns]",
    "int": "int64",
    "float": "float64",
}
# labels are tiny integers; int8 keeps a 1.75 M-row frame small
_LABEL_DTYPE = "int8"


def pandas_dtypes(*, labels: bool = True) -> dict[str, str]:
    """Column -> pandas dtype for a transactions frame (with the label columns unless ``labels=False``)."""
    dtypes = {f.name: _PANDAS_DTYPES[f.kind] for f in EVENT_FIELDS}
    if labels:
        dtypes.update({f.name: _LABEL_DTYPE for f in LABEL_FIELDS})
    return dtypes


# -- single events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """Outcome of :func:`validate_event`: ``ok`` with the normalized event, or the reason it is bad."""

    ok: bool
    reason: str = ""
    event: dict[str, Any] | None = None


def _bad(reason: str) -> Validation:
    return Validation(ok=False, reason=reason)


def printable(text: str, limit: int | None = None) -> str:
    """``text`` safe for every sink: control, format and separator characters and lone surrogates escaped
    (as Python writes them), cut to ``limit`` characters. For reasons that quote what a producer sent."""
    out = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return out if limit is None or len(out) <= limit else out[: limit - 3] + "..."


def parse_timestamp(value: str) -> datetime:
    """ISO-8601 string -> naive UTC datetime; an aware value is converted to UTC first."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def format_timestamp(value: datetime) -> str:
    """naive-UTC datetime -> ISO-8601 string with a ``Z``, the wire format of ``tx_datetime``."""
    return value.isoformat() + "Z" if value.tzinfo is None else value.astimezone(UTC).isoformat()


def _check_value(field: Field, value: Any) -> tuple[Any, str]:
    """Return (normalized value, "") or (None, reason)."""
    where = f"field '{field.name}'"
    if value is None:
        return None, f"{where} is null"
    if field.kind == "string":
        if not isinstance(value, str):
            return None, f"{where}: expected a string, got {type(value).__name__}"
        if not value.strip():
            return None, f"{where} is empty"
        if field.max_length is not None and len(value) > field.max_length:
            return None, f"{where}: longer than {field.max_length} characters"
        # control characters break Postgres COPY and the state's id packing, lone surrogates the Arrow
        # writer; separators and unassigned code points have no place in an id either
        if not value.isprintable():
            return None, f"{where}: holds a non-printable character: {printable(value, _QUOTE_CHARS)}"
        return value, ""
    if field.kind == "timestamp":
        if not isinstance(value, str):
            return None, f"{where}: expected an ISO-8601 timestamp string, got {type(value).__name__}"
        try:
            parsed = parse_timestamp(value)
        except (ValueError, OverflowError):  # OverflowError: a zone offset past the calendar's edge
            return None, f"{where}: not an ISO-8601 timestamp: {printable(value, _QUOTE_CHARS)}"
        if not MIN_EVENT_TIME <= parsed < MAX_EVENT_TIME:
            return None, f"{where}: outside {MIN_EVENT_TIME:%Y-%m-%d} .. {MAX_EVENT_TIME:%Y-%m-%d}: {parsed}"
        return parsed, ""
    # bool is an int subclass in Python, but `true` is never a valid id or amount
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"{where}: expected a number, got {type(value).__name__}"
    if field.kind == "int":
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                return None, f"{where}: expected an integer, got {value!r}"
            value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            return None, f"{where}: must be finite, got {value!r}"
    if field.minimum is not None and value < field.minimum:
        return None, f"{where}: must be >= {field.minimum:g}, got {value!r}"
    if field.maximum is not None and value > field.maximum:
        return None, f"{where}: must be <= {field.maximum:g}, got {value!r}"
    return value, ""


def validate_event(payload: str | bytes | bytearray | Mapping[str, Any]) -> Validation:
    """Check one event (raw JSON or an already decoded mapping).

    Returns ``Validation(ok=True, event=...)`` with ``tx_datetime`` parsed to a naive UTC ``datetime``
    and ids as ``int``, or ``Validation(ok=False, reason=...)`` saying what is wrong, for the dead-letter
    topic. Unknown fields are rejected, not ignored: a producer that sends them has a different schema
    in mind, and silently dropping data hides that.
    """
    if isinstance(payload, str | bytes | bytearray):
        size = len(payload.encode() if isinstance(payload, str) else payload)
        if size > MAX_EVENT_BYTES:
            return _bad(f"payload too large: {size} bytes > {MAX_EVENT_BYTES}")
        try:
            decoded = json.loads(payload)
        except RecursionError:
            return _bad("not valid JSON: nested too deeply")
        except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
            return _bad(f"not valid JSON: {printable(str(err), 200)}")
    else:
        decoded = payload
    if not isinstance(decoded, Mapping):
        return _bad(f"not a JSON object: got {type(decoded).__name__}")
    missing = [name for name in EVENT_COLUMNS if name not in decoded]
    if missing:
        return _bad(f"missing field(s): {', '.join(missing)}")
    unknown = sorted(str(k) for k in decoded if k not in EVENT_COLUMNS)
    if unknown:
        return _bad(printable(f"unknown field(s): {', '.join(unknown)}", 200))
    event: dict[str, Any] = {}
    for field in EVENT_FIELDS:
        value, reason = _check_value(field, decoded[field.name])
        if reason:
            return _bad(reason)
        event[field.name] = value
    return Validation(ok=True, event=event)


def event_to_json(event: Mapping[str, Any]) -> str:
    """Serialize an event for the wire (compact; ``tx_datetime`` as ISO-8601 UTC)."""
    out = {}
    for field in EVENT_FIELDS:
        value = event[field.name]
        if field.kind == "timestamp":
            value = format_timestamp(value.to_pydatetime() if hasattr(value, "to_pydatetime") else value)
        elif field.kind == "int":
            value = int(value)
        elif field.kind == "float":
            value = float(value)
        out[field.name] = value
    return json.dumps(out, separators=(",", ":"))


# -- whole frames --------------------------------------------------------------------------------------


def frame_problems(frame: pd.DataFrame, *, labels: bool = False) -> list[str]:
    """Every way ``frame`` breaks the schema (empty list when it conforms). Vectorized."""
    import numpy as np
    import pandas as pd

    fields = EVENT_FIELDS + (LABEL_FIELDS if labels else ())
    problems = [f"missing column '{f.name}'" for f in fields if f.name not in frame.columns]
    for field in fields:
        if field.name not in frame.columns:
            continue
        col = frame[field.name]
        nulls = int(col.isna().sum())
        if nulls:
            problems.append(f"column '{field.name}': {nulls} null value(s)")
        if field.kind == "timestamp":
            if not pd.api.types.is_datetime64_any_dtype(col):
                problems.append(f"column '{field.name}': expected datetimes, got {col.dtype}")
            continue
        if field.kind == "string":
            if field.max_length is not None:
                too_long = int((col.astype("string").str.len() > field.max_length).sum())
                if too_long:
                    problems.append(
                        f"column '{field.name}': {too_long} value(s) over {field.max_length} chars"
                    )
            continue
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            problems.append(f"column '{field.name}': expected numbers, got {col.dtype}")
            continue
        values = col.to_numpy(dtype="float64", na_value=np.nan)
        if field.kind == "float":
            bad = int((~np.isfinite(values) & ~np.isnan(values)).sum())
            if bad:
                problems.append(f"column '{field.name}': {bad} infinite value(s)")
        elif not pd.api.types.is_integer_dtype(col):
            fractional = int((np.mod(values[~np.isnan(values)], 1) != 0).sum())
            if fractional:
                problems.append(f"column '{field.name}': {fractional} non-integer value(s)")
        if field.minimum is not None and (below := int((values < field.minimum).sum())):
            problems.append(f"column '{field.name}': {below} value(s) below {field.minimum:g}")
        if field.maximum is not None and (above := int((values > field.maximum).sum())):
            problems.append(f"column '{field.name}': {above} value(s) above {field.maximum:g}")
    if "transaction_id" in frame.columns and (dupes := int(frame["transaction_id"].duplicated().sum())):
        problems.append(f"column 'transaction_id': {dupes} duplicate id(s)")
    return problems


def conform(frame: pd.DataFrame, *, labels: bool | None = None) -> pd.DataFrame:
    """Schema columns only, in schema order, cast to the schema dtypes; raise if the frame breaks it.

    ``labels=None`` keeps the label columns when present.
    """
    with_labels = all(c in frame.columns for c in LABEL_COLUMNS) if labels is None else labels
    problems = frame_problems(frame, labels=with_labels)
    if problems:
        raise ValueError("transactions do not match the schema: " + "; ".join(problems))
    dtypes = pandas_dtypes(labels=with_labels)
    return frame.loc[:, list(dtypes)].astype(dtypes)


def read_parquet(path: str | Path) -> pd.DataFrame:
    """A Parquet file with the schema's columns cast back to the schema dtypes (Parquet round-trips Arrow
    strings as Python strings); other columns (features) are left as they are."""
    import pandas as pd

    frame = pd.read_parquet(path)
    dtypes = {c: t for c, t in pandas_dtypes().items() if c in frame.columns}
    return frame.astype(dtypes)
