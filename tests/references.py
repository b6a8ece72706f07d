"""Plain pandas re-statements of what the product computes elsewhere (in SQL, or online in the scorer),
which the tests hold the product's own code against. Test-only: nothing in the package uses them."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from fraudops.features import SECONDS_PER_DAY, WINDOW_FEATURES, epoch_seconds


def labels_known_at(labels: pd.DataFrame, cutoff: datetime | pd.Timestamp) -> pd.DataFrame:
    """The labels published by ``cutoff`` (what a training run at ``cutoff`` may use; in the product,
    ``fraud_db.read_transactions``' ``available_at`` filter)."""
    return labels.loc[labels["available_at"] <= pd.Timestamp(cutoff)]


def terminal_risk_table(transactions: pd.DataFrame, as_of: pd.Timestamp | str) -> pd.DataFrame:
    """Terminal window features valid for a transaction at ``as_of``, per terminal (the scorer's lookup
    table, built from the batch definitions).

    ``transactions`` needs ``tx_datetime``, ``terminal_id`` and ``tx_fraud``; only transactions at least
    the label delay old count, as in :func:`fraudops.features.build_features`. Terminals with no such
    transaction are absent: their features are 0.
    """
    t = int(epoch_seconds(np.array([pd.Timestamp(as_of).to_datetime64()]))[0])
    seconds = epoch_seconds(transactions["tx_datetime"])
    fraud = pd.to_numeric(transactions["tx_fraud"], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
    terminal = transactions["terminal_id"].to_numpy()
    columns: dict[str, pd.Series] = {}
    for f in (f for f in WINDOW_FEATURES if f.entity == "terminal_id"):
        end = t - f.delay_days * SECONDS_PER_DAY
        inside = (seconds > end - f.window_days * SECONDS_PER_DAY) & (seconds <= end)
        grouped = pd.Series(fraud[inside]).groupby(terminal[inside])
        columns[f.name] = grouped.size() if f.statistic == "count" else grouped.mean()
    table = pd.DataFrame(columns).fillna(0.0).astype(np.float64)
    table.index.name = "terminal_id"
    return table
