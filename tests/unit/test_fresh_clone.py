"""What a user sees before anything was set up: a fresh clone with only the committed files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from fraudops.cli import main
from fraudops.config.settings import find_project_root, load_settings
from fraudops.demo import LiveSummary, format_summary
from fraudops.stack.manager import Stack, format_status


def _fresh_clone(tmp_path: Path) -> Path:
    """The committed config and secret examples, nothing generated."""
    root = find_project_root()
    (tmp_path / "configs").mkdir()
    shutil.copy(root / "configs" / "fraudops.yaml", tmp_path / "configs")
    shutil.copytree(root / "env", tmp_path / "env", ignore=shutil.ignore_patterns("*.env"))
    shutil.copytree(root / "kafka", tmp_path / "kafka")
    return tmp_path


def test_status_before_the_first_up_lists_every_service_as_down(tmp_path) -> None:
    root = _fresh_clone(tmp_path)
    stack = Stack(load_settings(root, stack={**load_settings(root).stack.model_dump(), "data_dir": "data"}))
    assert not stack.was_set_up()
    rows = stack.status()
    assert {"postgres", "kafka-1", "airflow-apiserver", "mlflow"} <= {r.name for r in rows}
    assert all(r.pid is None and not r.health.ok for r in rows)
    assert stack.down() == []
    assert not list((root / "env").glob("*.env")), "status and down generate nothing"


def test_make_status_on_a_fresh_clone_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_HOME", str(_fresh_clone(tmp_path)))
    result = CliRunner().invoke(main, ["stack", "status"])
    assert result.exit_code == 1, result.output
    assert "never brought up" in result.output and "make up" in result.output
    assert "Traceback" not in result.output


def test_demo_summary_names_versions_latency_alerts_and_labels() -> None:
    from datetime import datetime

    text = format_summary(
        LiveSummary(
            scored_by_version={"10": 1200, "9": 2400},
            latency_p50_ms=812.4,
            latency_p99_ms=2950.0,
            alerts={"REVIEW": 12, "BLOCK": 3},
            labels=3600,
            labels_known_from=datetime(2026, 12, 7, 11, 5),
        )
    )
    assert "v9: 2,400, v10: 1,200" in text  # in version order, not text order
    assert "p50 812 ms, p99 2,950 ms" in text
    assert "BLOCK 3, REVIEW 12" in text
    assert "3,600 delayed labels" in text and "2026-12-07 11:05 UTC" in text


def test_demo_summary_without_scoring() -> None:
    text = format_summary(LiveSummary({}, None, None, {}, 0, None))
    assert "scored, by model version: none" in text
    assert "no transaction scored" in text and "alerts raised: none" in text


def test_a_started_service_that_died_is_failed_with_its_last_error(tmp_path) -> None:
    root = _fresh_clone(tmp_path)
    stack = Stack(load_settings(root))
    stack.layout.create()
    # what a crash leaves: the pid file of a process that is gone, and its log
    stack.layout.pid_of("spark-scorer").write_text(json.dumps({"pid": 2**22 + 1, "start_time": "1"}))
    stack.layout.log_of("spark-scorer").write_text(
        "starting\nTraceback (most recent call last):\nOverflowError: date value out of range\nbye\n"
    )
    rows = {r.name: r for r in stack.status()}
    scorer = rows["spark-scorer"]
    assert scorer.died and not scorer.acceptable
    assert scorer.health.detail == "died: OverflowError: date value out of range"
    assert "FAILED" in format_status(list(rows.values()))
    assert stack.down(["spark-scorer"]) == []  # nothing to signal; the stale pid file is cleared
    assert not stack.layout.pid_of("spark-scorer").exists()
    assert next(r for r in stack.status() if r.name == "spark-scorer").acceptable  # off, not failed
