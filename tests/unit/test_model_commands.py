"""The model-core CLI end to end on a tiny world: simulate -> import -> features -> train -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from fraudops.commands.model import (
    build_features_command,
    evaluate_command,
    import_transactions_command,
    simulate_command,
    simulate_stream_command,
    train_command,
)
from fraudops.commands.stream import score_command
from fraudops.features import FEATURE_NAMES
from fraudops.schema import read_parquet, validate_event


def _ok(result) -> str:  # noqa: ANN001
    assert result.exit_code == 0, result.output + repr(result.exception)
    # stdout only: MLflow logs its progress on stderr
    return result.stdout


def test_pipeline_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a local MLflow store keeps its default artifact root under the working directory
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "FRAUDOPS_TRAINING__EXPERIMENT": "cli",
        "FRAUDOPS_TRAINING__LATENCY_ROWS": "20",
        "FRAUDOPS_TRAINING__SPLIT__TRAIN_DAYS": "14",
        "FRAUDOPS_TRAINING__SPLIT__VALIDATION_DAYS": "7",
        "FRAUDOPS_TRAINING__SPLIT__TEST_DAYS": "7",
        "FRAUDOPS_MODEL__XGBOOST__N_ESTIMATORS": "30",
    }.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    transactions, features = tmp_path / "tx.parquet", tmp_path / "features.parquet"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    out = _ok(runner.invoke(simulate_command, [
        "--out", str(transactions), "--customers", "300", "--terminals", "600", "--days", "50", "--seed", "3",
    ]))  # fmt: skip
    frame = read_parquet(transactions)
    assert f"{len(frame):,} transactions" in out
    assert frame["tx_datetime"].dt.date.nunique() == 50

    lines = _ok(
        runner.invoke(simulate_stream_command, ["--start", "2018-05-01", "--limit", "5"])
    ).splitlines()
    assert len(lines) == 5 and all(validate_event(line).ok for line in lines)

    outside = tmp_path / "outside.csv"
    frame.rename(columns={"tx_amount": "AMOUNT", "customer_id": "CARD"}).to_csv(outside, index=False)
    imported = tmp_path / "imported.parquet"
    _ok(runner.invoke(import_transactions_command, [
        str(outside), "--out", str(imported), "--map", "AMOUNT=tx_amount", "--map", "CARD=customer_id",
    ]))  # fmt: skip
    pd.testing.assert_frame_equal(read_parquet(imported), frame)
    bad = runner.invoke(
        import_transactions_command, [str(outside), "--out", str(imported), "--map", "AMOUNT"]
    )
    assert bad.exit_code != 0 and "SOURCE=FIELD" in bad.output

    _ok(runner.invoke(build_features_command, ["--transactions", str(transactions), "--out", str(features)]))
    assert list(pd.read_parquet(features).columns[-len(FEATURE_NAMES) :]) == list(FEATURE_NAMES)

    refused = runner.invoke(
        train_command, ["--data", str(features), "--tracking-uri", f"file:{tmp_path}/mlruns"]
    )
    assert refused.exit_code == 2 and "no model registry" in refused.output and "sqlite:///" in refused.output
    assert not (tmp_path / "mlruns").exists()

    trained = json.loads(_ok(runner.invoke(train_command, [
        "--family", "xgboost", "--data", str(features), "--tracking-uri", uri, "--register",
    ])))  # fmt: skip
    assert trained[0]["family"] == "xgboost" and trained[0]["model_version"] == "1"
    assert trained[0]["metrics"]["auc_roc"] > 0.7
    # the local store's artifacts go next to its database, not under the working directory
    assert (tmp_path / "artifacts").is_dir()
    unregistered = json.loads(_ok(runner.invoke(train_command, [
        "--family", "xgboost", "--data", str(features), "--tracking-uri", uri,
    ])))  # fmt: skip
    assert unregistered[0]["model_version"] is None

    last_day = frame["tx_datetime"].max().floor("D")
    first_day = last_day - pd.Timedelta(days=6)
    evaluated = json.loads(_ok(runner.invoke(evaluate_command, [
        "--model-uri", "models:/fraud-detector/1", "--data", str(features), "--tracking-uri", uri,
        "--start", str(first_day.date()), "--end", str(last_day.date()),
    ])))  # fmt: skip
    # the same model on the same last 7 days scores the same; both days of the window are in it
    assert evaluated["metrics"]["auc_roc"] == pytest.approx(trained[0]["metrics"]["auc_roc"], abs=1e-5)
    assert evaluated["window"] == f"{first_day.date()} to {last_day.date()} (both included, 7 days)"
    assert evaluated["window"] == trained[0]["test_window"]
    in_window = frame["tx_datetime"].dt.floor("D").between(first_day, last_day)
    assert evaluated["metrics"]["test_rows"] == in_window.sum()
    assert "protocol_average_precision_mean" in evaluated["metrics"]

    scores = tmp_path / "scores.parquet"
    out = _ok(runner.invoke(score_command, [
        str(transactions), "--out", str(scores), "--model-uri", "models:/fraud-detector/1",
        "--tracking-uri", uri,
    ]))  # fmt: skip
    scored = pd.read_parquet(scores)
    assert f"{len(frame):,} transactions scored" in out
    assert scored["transaction_id"].tolist() == frame["transaction_id"].tolist()
    assert scored["score"].between(0, 1).all() and set(scored["decision"]) <= {"APPROVE", "REVIEW", "BLOCK"}
    # the file's scores are the model's: its AUC on the evaluated window is the evaluation's
    from sklearn.metrics import roc_auc_score

    window = scored[in_window.to_numpy()]
    assert roc_auc_score(window["tx_fraud"], window["score"]) == pytest.approx(
        evaluated["metrics"]["auc_roc"], abs=1e-5
    )
