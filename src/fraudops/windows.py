"""The time windows of a training and of an evaluation, counted back from the end of the data::

    | train (84 d) | validation (14 d) | gap = label delay (7 d) | test (28 d: four weekly test sets) |

A model is trained as it would be at the start of the test window: labels of the last ``gap`` days are not
known then, so training and validation stop before the gap. The trainer and the pipeline's evaluate step
cut their windows here, so a candidate and the champion are compared on the window it was tested on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudops.config.model import SplitSettings
from fraudops.features import LABEL_DELAY_DAYS


@dataclass(frozen=True)
class SplitWindows:
    train_start: pd.Timestamp
    validation_start: pd.Timestamp
    gap_start: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def masks(self, times: pd.Series) -> dict[str, np.ndarray]:
        t = times.to_numpy()
        return {
            "train": (t >= self.train_start) & (t < self.validation_start),
            "validation": (t >= self.validation_start) & (t < self.gap_start),
            "test": (t >= self.test_start) & (t < self.test_end),
        }

    def as_params(self) -> dict[str, str]:
        return {f"split_{k}": str(v.date()) for k, v in self.__dict__.items()}

    @property
    def test_text(self) -> str:
        return f"{self.test_start.date()}..{self.test_end.date()}"


def time_split(times: pd.Series, split: SplitSettings, end: pd.Timestamp | None = None) -> SplitWindows:
    """Windows ending at ``end`` (default: midnight after the last transaction)."""
    test_end = (
        pd.Timestamp(end) if end is not None else pd.Timestamp(times.max()).floor("D") + pd.Timedelta(days=1)
    )
    test_start = test_end - pd.Timedelta(days=split.test_days)
    gap_start = test_start - pd.Timedelta(days=split.gap_days)
    validation_start = gap_start - pd.Timedelta(days=split.validation_days)
    train_start = validation_start - pd.Timedelta(days=split.train_days)
    return SplitWindows(train_start, validation_start, gap_start, test_start, test_end)


def training_end(cutoff: pd.Timestamp) -> pd.Timestamp:
    """End of the out-of-time test window of a model trained at ``cutoff``: labels younger than the label
    delay are unknown then, so the window ends a delay earlier, at a day boundary."""
    return (pd.Timestamp(cutoff) - pd.Timedelta(days=LABEL_DELAY_DAYS)).floor("D")


def windows_at(features: pd.DataFrame, split: SplitSettings, cutoff: pd.Timestamp) -> SplitWindows:
    """The windows of a model trained at ``cutoff`` on ``features`` (what the evaluate step tests on)."""
    return time_split(features["tx_datetime"], split, training_end(cutoff))
