"""The transaction producer: simulated (or file) events into ``transactions_stream`` at a chosen rate,
with the delayed label feed writing ``fraud_labels``.

Writes are durable: acks=all with an idempotent producer, so a broker that dies mid-stream loses nothing
acknowledged and a retry never duplicates. The message key is the event's :data:`EVENT_KEY`, so a card's
events stay in order on one partition. Labels are held back by the label delay (event time) and written
a little ahead of need, so a label is in Postgres before the scorer can want it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from fraudops.labels import DEFAULT_DELAY, DelayedLabelFeed, Label
from fraudops.schema import EVENT_KEY, event_to_json
from fraudops.simulator import SimulatedTransaction, paced


@dataclass
class ProduceStats:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    labels_written: int = 0
    started: float = field(default_factory=time.monotonic)
    first_event: datetime | None = None
    last_event: datetime | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def label_writer(dsn: str) -> Callable[[list[Label]], int]:
    """A label sink writing ``fraud_labels`` (idempotent)."""
    from fraudops import fraud_db

    def write(labels: list[Label]) -> int:
        if not labels:
            return 0
        return fraud_db.write_labels(dsn, pd.DataFrame([label.as_record() for label in labels]))

    return write


def produce(
    transactions: Iterable[SimulatedTransaction],
    producer: Any,
    topic: str,
    *,
    rate: float | None = None,
    limit: int | None = None,
    duration_s: float | None = None,
    write_labels: Callable[[list[Label]], int] | None = None,
    label_delay: timedelta = DEFAULT_DELAY,
    label_lookahead: timedelta = timedelta(hours=1),
    wallclock_labels: bool = False,
    progress: Callable[[ProduceStats], None] | None = None,
    progress_every_s: float = 1.0,
) -> ProduceStats:
    """Publish ``transactions`` until exhausted, ``limit`` events or ``duration_s`` seconds.

    ``rate`` is events per second (None: as fast as the brokers take them). Labels are released on the
    event clock (``wallclock_labels=False``, a simulated stream) or the wall clock, and written once
    the oldest is due, together with those due within ``label_lookahead``; when the stream stops, for
    whatever reason, the labels not yet due are stored with their future ``available_at``. Blocks until
    every event is acknowledged; ``stats.failed`` counts events the brokers did not acknowledge.
    """
    stats = ProduceStats()
    feed = DelayedLabelFeed(label_delay)
    deadline = time.monotonic() + duration_s if duration_s is not None else None
    last_progress = time.monotonic()

    def delivered(err: Any, _msg: Any) -> None:
        if err is None:
            stats.acked += 1
        else:
            stats.failed += 1
            if len(stats.errors) < 10:
                stats.errors.append(str(err))

    def flush_labels(now: datetime, force: bool = False) -> None:
        if write_labels is None or not len(feed):
            return
        due = feed.due(now)
        if due or force:
            due += feed.due(now + label_lookahead) if not force else feed.due(datetime.max)
            stats.labels_written += write_labels(due)

    items: Iterator[SimulatedTransaction] = iter(transactions)
    if rate:
        items = paced(items, rate)
    try:
        for tx in items:
            event = tx.event
            event_time = event["tx_datetime"]
            flush_labels(datetime.utcnow() if wallclock_labels else event_time)
            while True:
                try:
                    producer.produce(
                        topic, key=str(event[EVENT_KEY]), value=event_to_json(event), on_delivery=delivered
                    )
                    break
                except BufferError:  # local queue full: wait for acknowledgements
                    producer.poll(0.1)
            producer.poll(0)
            stats.sent += 1
            stats.first_event = stats.first_event or event_time
            stats.last_event = event_time
            if write_labels is not None:
                feed.push(event["transaction_id"], event_time, tx.tx_fraud, tx.tx_fraud_scenario)
            now = time.monotonic()
            if progress and now - last_progress >= progress_every_s:
                progress(stats)
                last_progress = now
            if (limit is not None and stats.sent >= limit) or (deadline is not None and now >= deadline):
                break
    finally:
        # also when interrupted (Ctrl-C, SIGTERM): what was handed to the client is delivered, and the
        # labels still held back are stored with the time each becomes known (``available_at``), as the
        # history loader does. Readers only take labels known at their cutoff, so nothing leaks early,
        # and the streamed transactions are labelled for the retrainings that come after that time.
        producer.flush(180)
        flush_labels(datetime.max, force=True)
    if progress:
        progress(stats)
    return stats


def simulated_stream(settings: Any, start: datetime | None, clock: str) -> Iterator[SimulatedTransaction]:
    """The simulator's stream; by default it continues the history (the day after the default data set)."""
    from fraudops.simulator import stream_transactions

    sim = settings.simulator
    if start is None:
        start = datetime.combine(sim.start_date, datetime.min.time()) + timedelta(days=sim.n_days)
    return stream_transactions(sim, start, clock=clock)  # type: ignore[arg-type]


def file_stream(path: str) -> Iterator[SimulatedTransaction]:
    """Events from a Parquet file of transactions (labels used when present), in time order."""
    from fraudops.schema import EVENT_COLUMNS, read_parquet

    frame = read_parquet(path).sort_values(["tx_datetime", "transaction_id"], kind="stable")
    has_labels = "tx_fraud" in frame.columns
    for row in frame.itertuples(index=False):
        record = row._asdict()
        yield SimulatedTransaction(
            event={c: record[c] for c in EVENT_COLUMNS}
            | {"tx_datetime": pd.Timestamp(record["tx_datetime"]).to_pydatetime()},
            tx_fraud=int(record["tx_fraud"]) if has_labels else 0,
            tx_fraud_scenario=int(record.get("tx_fraud_scenario", 0)) if has_labels else 0,
        )
