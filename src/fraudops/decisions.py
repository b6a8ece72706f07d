"""From a fraud score to a decision. Shared by evaluation (precision/recall at the thresholds) and the
scorer, so both mean the same thing by REVIEW and BLOCK."""

from __future__ import annotations

from typing import Literal

import numpy as np

from fraudops.model_config import Thresholds

Decision = Literal["APPROVE", "REVIEW", "BLOCK"]
DECISIONS: tuple[Decision, ...] = ("APPROVE", "REVIEW", "BLOCK")


def decide(scores: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """score >= block -> BLOCK, score >= review -> REVIEW, else APPROVE (thresholds inclusive)."""
    scores = np.asarray(scores)
    return np.select(
        [scores >= thresholds.block, scores >= thresholds.review], ["BLOCK", "REVIEW"], default="APPROVE"
    )
