"""From a fraud score to a decision. Shared by evaluation (precision/recall at the thresholds) and the
scorer, so both mean the same thing by REVIEW and BLOCK."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from fraudops.config.model import Thresholds

Decision = Literal["APPROVE", "REVIEW", "BLOCK"]
DECISIONS: tuple[Decision, ...] = ("APPROVE", "REVIEW", "BLOCK")


def decide(scores: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """score >= block -> BLOCK, score >= review -> REVIEW, else APPROVE (thresholds inclusive)."""
    scores = np.asarray(scores)
    return np.select(
        [scores >= thresholds.block, scores >= thresholds.review], ["BLOCK", "REVIEW"], default="APPROVE"
    )


def scored_frame(transactions: pd.DataFrame, scores: np.ndarray, thresholds: Thresholds) -> pd.DataFrame:
    """One row per transaction: its keys, its label when known, the score and the decision."""
    wanted = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount", "tx_fraud")
    keys = [c for c in wanted if c in transactions.columns]
    out = transactions.loc[:, keys].reset_index(drop=True)
    out["score"] = np.asarray(scores, dtype=np.float64)
    out["decision"] = decide(out["score"].to_numpy(), thresholds)
    return out
