"""Loading simulated history into the `fraud` database (first use, demos, tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd

from fraudops import fraud_db
from fraudops.config.model import SimulatorSettings
from fraudops.labels import DEFAULT_DELAY, label_records
from fraudops.simulator import iter_day_frames


def load_simulated_history(
    world: SimulatorSettings,
    target: str,
    *,
    delay: timedelta = DEFAULT_DELAY,
    progress: bool = False,
    on_frame: Callable[[pd.DataFrame], None] | None = None,
) -> tuple[int, int]:
    """Write the world's transactions and their delayed labels, a week at a time; returns the rows added.

    Every label is stored with the time it becomes known (``available_at``); readers ask for the labels
    known at their cutoff, so labels of the last days are written ahead of time without leaking.
    """
    fraud_db.require_tables(target, ["transactions_raw", "fraud_labels"])
    frames = iter_day_frames(world, days_per_frame=7)
    if progress:
        from tqdm.auto import tqdm

        frames = tqdm(frames, desc="to postgres", unit="week", total=-(-world.n_days // 7))
    new_tx = new_labels = 0
    for frame in frames:
        new_tx += fraud_db.write_transactions(target, frame)
        new_labels += fraud_db.write_labels(target, label_records(frame, delay))
        if on_frame is not None:
            on_frame(frame)
    return new_tx, new_labels


def world_ending_today(world: SimulatorSettings, days: int, now: datetime | None = None) -> SimulatorSettings:
    """The same world, shifted so that its history covers the ``days`` days up to today (UTC)."""
    today = (now or datetime.now(UTC)).date()
    return world.model_copy(update={"n_days": days, "start_date": today - timedelta(days=days - 1)})


def next_stream_start(world: SimulatorSettings, target: str) -> datetime:
    """The first simulated day that no stored transaction of this world uses yet.

    Simulated transaction ids are ``<seed>-<yyyymmdd>-<n>``: a live stream started there never repeats an id
    that the database already holds, so its transactions are scored and stored, not skipped as replays.
    """
    newest = fraud_db.newest_simulated_day(target, world.seed)
    if newest is None:
        return datetime.combine(datetime.now(UTC).date(), datetime.min.time())
    return datetime.strptime(newest, "%Y%m%d") + timedelta(days=1)
