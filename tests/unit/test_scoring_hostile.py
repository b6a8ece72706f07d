"""Any bytes through the scorer's real per-record code: parsing never raises, every record comes out
once, and what comes out is accepted by every later stage (the customer windows, Postgres COPY, the
dead-letter topic)."""

from __future__ import annotations

import io
import json
import random
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.schema import MAX_ID_LENGTH
from fraudops.scoring.batch import MAX_DEAD_LETTER_BYTES, dead_letters, events_frame
from fraudops.scoring.customers import CUSTOMER_FEATURES, CustomerWindows
from fraudops.scoring.parse import EventTimeWindow, to_epoch_us, validate_frame
from hostile_events import any_payload, hostile_stream

NOW = datetime(2026, 11, 30, 12, 0, 0)
NOW_MS = to_epoch_us(NOW) // 1000
_NO_HISTORY = pd.DataFrame(
    {"transaction_id": [], "customer_id": np.empty(0, np.int64), "tx_datetime": [], "tx_amount": []}
).astype({"tx_datetime": "datetime64[ns]", "tx_amount": "float64"})


def _records(payloads: list[bytes | None], kafka_ts: list[int | None]) -> pd.DataFrame:
    n = len(payloads)
    return pd.DataFrame(
        {
            "value": payloads,
            "topic": ["transactions_stream"] * n,
            "partition": [0] * n,
            "offset": list(range(n)),
            "kafka_ts_ms": pd.array(kafka_ts, dtype="Int64"),
        }
    )


def _check_every_stage(parsed: pd.DataFrame, n: int) -> None:
    assert len(parsed) == n and parsed["offset"].tolist() == list(range(n))
    bad = parsed.loc[~parsed["ok"].astype(bool)]
    assert bad["reason"].map(lambda r: isinstance(r, str) and bool(r) and r.isprintable()).all()
    for letter in dead_letters(bad, NOW_MS):
        assert len(letter.encode()) <= MAX_DEAD_LETTER_BYTES
        assert json.loads(letter)["reason"]
    good = parsed.loc[parsed["ok"].astype(bool)]
    if len(good):
        ids = good["transaction_id"]
        assert ids.map(lambda i: i.isprintable() and 0 < len(i) <= MAX_ID_LENGTH).all()
        events = events_frame(good)  # pandas nanoseconds hold every accepted time
        assert (events["tx_datetime"] >= NOW - timedelta(days=61)).all()
        # the customer windows take them, and know each id afterwards
        first = events.loc[~events["transaction_id"].duplicated()]
        customers = CustomerWindows(lambda start: _NO_HISTORY)
        customers.refresh(int(first["tx_datetime"].min().timestamp()))
        features = customers.features(first)
        assert all(
            np.isfinite(features[name]).all() and (features[name] >= 0).all() for name in CUSTOMER_FEATURES
        )
        customers.append(first)
        assert not customers.is_new(ids.to_numpy(dtype=object)).any()
        # Postgres COPY (csv) refuses NUL; the text must also survive a UTF-8 round trip
        buffer = io.StringIO()
        events.to_csv(buffer, index=False, header=False)
        assert "\x00" not in buffer.getvalue()
        buffer.getvalue().encode("utf-8")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            any_payload(NOW),
            st.one_of(st.none(), st.integers(NOW_MS - 10**10, NOW_MS + 10**10), st.integers(0, 2**62)),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_bytes_come_out_as_an_event_or_a_dead_letter(records) -> None:
    payloads = [p for p, _ in records]
    parsed = validate_frame(_records(payloads, [t for _, t in records]), EventTimeWindow())
    _check_every_stage(parsed, len(records))


def test_the_live_hostile_mix_is_all_dead_letters_with_reasons() -> None:
    hostile = list(hostile_stream(random.Random(7), NOW, 900))
    parsed = validate_frame(_records([p for _, p in hostile], [NOW_MS] * len(hostile)))
    _check_every_stage(parsed, len(hostile))
    kinds = pd.Series([k for k, _ in hostile])
    accepted = kinds[parsed["ok"].astype(bool).to_numpy()]
    # the categories that may keep a valid event (a printable unicode id, an amount of 0) may pass; the
    # rest never do
    assert set(accepted) <= {"unicode id", "numeric edge"}, accepted.value_counts().to_dict()
    assert len(accepted) < len(hostile) // 9


def test_an_event_far_from_its_record_time_is_a_dead_letter() -> None:
    def event(when: datetime) -> bytes:
        return json.dumps(
            {"transaction_id": "a", "tx_datetime": when.isoformat() + "Z", "customer_id": 1}
            | {"terminal_id": 2, "tx_amount": 3.0}
        ).encode()

    window = EventTimeWindow(max_ahead=timedelta(hours=24), max_behind=timedelta(days=60))
    times = [NOW, NOW + timedelta(hours=23), NOW + timedelta(hours=25), NOW - timedelta(days=59)]
    times += [NOW - timedelta(days=61)]
    parsed = validate_frame(_records([event(t) for t in times] + [event(NOW)], [NOW_MS] * 5 + [None]), window)
    assert parsed["ok"].tolist() == [True, True, False, True, False, False]
    assert "ahead of its Kafka record" in parsed["reason"][2]
    assert "behind its Kafka record" in parsed["reason"][4]
    assert "no timestamp" in parsed["reason"][5]


def test_the_calendar_edge_that_stopped_the_scorer_is_a_dead_letter() -> None:
    payload = json.dumps(
        {"transaction_id": "a", "tx_datetime": "0001-01-01T00:00:00+01:00", "customer_id": 1}
        | {"terminal_id": 2, "tx_amount": 3.0}
    ).encode()
    parsed = validate_frame(_records([payload], [NOW_MS]))
    assert not parsed["ok"][0] and "ISO-8601" in parsed["reason"][0]


def test_a_huge_escape_heavy_payload_makes_a_bounded_dead_letter() -> None:
    payload = b'{"transaction_id": "' + b"\x01" * 900_000 + b'"}'  # ~5.4 MB once escaped in JSON
    parsed = validate_frame(_records([payload], [NOW_MS]))
    (letter,) = dead_letters(parsed, NOW_MS)
    assert len(letter) <= MAX_DEAD_LETTER_BYTES
    record = json.loads(letter)
    assert record["payload_truncated"] and record["payload"].startswith('{"transaction_id": "\x01')
    assert "too large" in record["reason"]
