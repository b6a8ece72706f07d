"""Settings of the streaming scorer (the ``scorer:`` section of ``configs/fraudops.yaml``)."""

from __future__ import annotations

from pydantic import Field

from fraudops.config.base import StrictModel


class ScorerSettings(StrictModel):
    source_topic: str = "transactions_stream"
    predictions_topic: str = "fraud_predictions"
    dead_letters_topic: str = "dead_letters"
    # `earliest` on a first start scores what is already on the topic; later starts resume from checkpoints
    starting_offsets: str = "earliest"
    # bounds a micro-batch (and so its latency) when the scorer catches up
    max_offsets_per_trigger: int = Field(10000, ge=1)
    # a micro-batch costs a few hundred ms: a short trigger makes latency about one batch
    trigger_interval: str = "200 milliseconds"
    # how long a broker may hold a fetch of the Kafka source's consumers for more data: each read task
    # ends with such a fetch past its offset range, so Kafka's default (500 ms) would be the floor of
    # every micro-batch's read (measured: 10,000 records read in 1.75 s at 500 ms, 0.3 s at 10 ms)
    kafka_fetch_max_wait_ms: int = Field(10, ge=0)
    # seconds between checks of the champion alias (a model_updates event triggers a check at once)
    poll_interval_s: float = Field(30.0, gt=0)
    # the terminal table re-reads this much event time before its last load, to pick up late labels
    terminal_settle_hours: float = Field(24.0, ge=0)
    # relative to the stack's data folder, or an s3a:// URI (object storage, as in compose)
    checkpoint_dir: str = "data/checkpoints/score_transactions"
    # relative to the project root; contents git-ignored
    last_known_good_dir: str = "models"
    # an event whose time lies further than this from its Kafka record's time is a dead letter: one far-off
    # event could otherwise push a card's window history out or skew the terminal features
    max_event_ahead_hours: float = Field(24.0, gt=0)
    max_event_behind_days: float = Field(60.0, gt=0)
    # a micro-batch is retried with backoff this long while Postgres or Kafka are unreachable; after that
    # the scorer exits and its restart policy (native supervisor, compose restart) takes over
    fault_retry_s: float = Field(600.0, gt=0)
    # score one row at a time instead of the whole micro-batch: only the baseline of `make bench-stream`
    row_at_a_time: bool = False
