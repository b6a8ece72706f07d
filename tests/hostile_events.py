"""Hostile input for the scorer, by category: shared by the property tests (hypothesis strategies) and the
live run (a deterministic generator), so both drive the same kinds of bytes at the real code."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from fraudops.schema import EVENT_COLUMNS

# every code point, lone surrogates and controls included
ANY_CHAR = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=80)

EDGE_NUMBERS: list[Any] = [
    0,
    -0.0,
    -1,
    1e-320,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    2**63 - 1,
    2**63,
    -(2**63),
    10**30,
    True,
    False,
    None,
    "12.5",
    [],
    {},
]
EDGE_TIMES = [
    "0001-01-01T00:00:00+01:00",  # the OverflowError that once stopped the scorer
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999",
    "1677-09-21T00:12:43",
    "2262-04-11T23:47:17",
    "1969-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
    "2026-13-01T00:00:00",
    "2026-02-30T00:00:00",
    "",
    "now",
    "2026-01-01T00:00:00+25:00",
]


def json_value(depth: int = 3) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        ANY_TEXT,
        st.sampled_from(EDGE_NUMBERS),
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
        max_leaves=8 if depth else 1,
    )


def good_event(when: datetime, i: int) -> dict[str, Any]:
    return {
        "transaction_id": f"t-{i}",
        "tx_datetime": when.isoformat() + "Z",
        "customer_id": i % 50,
        "terminal_id": i % 70,
        "tx_amount": round(1 + (i * 7.31) % 300, 2),
    }


@st.composite
def adversarial_event(draw: st.DrawFn, when: datetime) -> bytes:
    """A well-formed-looking event with one or more fields replaced by something hostile."""
    event: dict[str, Any] = good_event(when, draw(st.integers(0, 10**6)))
    for name in draw(st.lists(st.sampled_from(EVENT_COLUMNS), min_size=1, max_size=3, unique=True)):
        if name == "tx_datetime":
            event[name] = draw(
                st.one_of(
                    st.sampled_from(EDGE_TIMES),
                    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
                    ANY_TEXT,
                    json_value(),
                )
            )
        elif name == "transaction_id":
            event[name] = draw(st.one_of(ANY_TEXT, st.text(ANY_CHAR, min_size=60, max_size=70), json_value()))
        else:
            event[name] = draw(st.one_of(st.sampled_from(EDGE_NUMBERS), json_value()))
    if draw(st.booleans()):
        event[draw(ANY_TEXT)] = draw(json_value())  # an extra field, perhaps with a hostile name
    text = json.dumps(event, ensure_ascii=draw(st.booleans()), allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def plausible_event(draw: st.DrawFn, when: datetime) -> bytes:
    """An event of the right shape whose every value is drawn from the edges of what is allowed: any
    code point in the id, the extremes of the id and amount ranges, times around ``when``."""
    event = {
        "transaction_id": draw(st.text(ANY_CHAR, min_size=1, max_size=64)),
        "tx_datetime": draw(
            st.datetimes(min_value=when - timedelta(days=59), max_value=when + timedelta(hours=23))
        ).isoformat()
        + "Z",
        "customer_id": draw(st.integers(0, 2**63 - 1)),
        "terminal_id": draw(st.sampled_from([0, 1, 2**31, 2**63 - 1])),
        "tx_amount": draw(st.one_of(st.floats(0, 1e6), st.sampled_from([0.0, -0.0, 1e-320, 1e6]))),
    }
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


def any_payload(when: datetime) -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        st.none(),
        st.binary(max_size=300),
        adversarial_event(when),
        plausible_event(when),
        json_value().map(lambda v: json.dumps(v, allow_nan=True).encode("utf-8", "surrogatepass")),
        st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),  # nesting depth
        st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    )


# -- a deterministic mix for the live run ------------------------------------------------------------------


def hostile_stream(
    rng: random.Random, now: datetime, count: int, id_prefix: str = "hostile", id_base: int = 0
) -> Iterator[tuple[str, bytes]]:
    """``count`` hostile records as (category, payload), spread over every category. Ids that could be
    accepted start with ``id_prefix-``; customer and terminal ids start at ``id_base``."""
    categories = [
        "nesting",
        "unicode id",
        "unicode customer",
        "extreme time",
        "offset time",
        "numeric edge",
        "oversized",
        "escape heavy",
        "not json",
    ]
    for i in range(count):
        kind = categories[i % len(categories)]
        event = good_event(now, i)
        event["transaction_id"] = f"{id_prefix}-{i}"
        event["customer_id"] += id_base
        event["terminal_id"] += id_base
        if kind == "nesting":
            depth = rng.choice([100, 1000, 1500, 2040])
            yield kind, b"[" * depth + b"]" * depth
            continue
        if kind == "unicode id":
            event["transaction_id"] = f"{id_prefix}-u{i}-" + _random_text(rng, 8)
        elif kind == "unicode customer":
            event["customer_id"] = _random_text(rng, 4)
        elif kind == "extreme time":
            event["tx_datetime"] = rng.choice(EDGE_TIMES)
        elif kind == "offset time":
            shift = rng.choice(
                [timedelta(days=2), timedelta(days=-61), timedelta(days=3650), timedelta(days=-9000)]
            )
            event["tx_datetime"] = (now + shift).isoformat() + rng.choice(["Z", "+14:00", "-12:00"])
        elif kind == "numeric edge":
            event[rng.choice(["customer_id", "terminal_id", "tx_amount"])] = rng.choice(EDGE_NUMBERS)
        elif kind == "oversized":
            # a few large ones: the dead letters of these must stay sendable
            event["transaction_id"] = "x" * (300_000 if i % 1000 == 6 else rng.choice([65, 5000]))
        elif kind == "escape heavy":
            event["transaction_id"] = "\x00\x1f\u2028\ufeff" * (
                20_000 if i % 1000 == 7 else rng.choice([2, 500])
            )
        elif kind == "not json":
            yield kind, bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 50, 1000])))
            continue
        yield kind, json.dumps(event, allow_nan=True).encode("utf-8", "surrogatepass")


def _random_text(rng: random.Random, n: int) -> str:
    """Code points from every Unicode range: controls, surrogates, private use, unassigned, astral."""
    return "".join(
        chr(rng.choice([rng.randrange(0, 0x20), rng.randrange(0xD800, 0xE000), rng.randrange(0, 0x110000)]))
        for _ in range(n)
    )
