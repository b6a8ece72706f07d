"""The streaming scorer's own Postgres role: what it may do, and that it creates nothing itself."""

from __future__ import annotations

import re

from fraudops.config.settings import load_settings
from fraudops.connections import scorer_dsn
from fraudops.stack.postgres import scorer_grants


def test_the_scorer_reads_history_and_appends_only() -> None:
    grants = scorer_grants("fraud_scorer")
    assert 'GRANT SELECT, INSERT ON transactions_with_score TO "fraud_scorer"' in grants
    assert 'GRANT SELECT, INSERT ON fraud_alerts TO "fraud_scorer"' in grants
    assert 'GRANT SELECT ON fraud_labels TO "fraud_scorer"' in grants
    # UPDATE only on its own batch log (the replay counter), nothing destructive anywhere
    updates = [g for g in grants if re.search(r"\bUPDATE\b", g)]
    assert updates == ['GRANT SELECT, INSERT, UPDATE ON scorer_batches TO "fraud_scorer"']
    assert not any(word in g for g in grants for word in ("DELETE", "TRUNCATE", "ALL", "model_metadata"))


def test_the_scorer_logs_in_as_its_own_role() -> None:
    settings = load_settings()
    dsn = scorer_dsn(settings, {"SCORER_DB_PASSWORD": "p@ss/word"})
    assert dsn == (
        f"postgresql://fraud_scorer:p%40ss%2Fword@{settings.stack.host}:{settings.stack.ports.postgres}/fraud"
    )
