"""The committed alert rules, rendered with the committed thresholds, pass promtool's checks and the
unit tests in configs/prometheus/tests (each rule fires on its condition and stays quiet below it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fraudops.config.settings import load_settings
from fraudops.monitoring.prometheus import render_rules


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    settings = load_settings()
    template = settings.path(settings.monitoring.rules_file).read_text()
    (tmp_path / "rules.yml").write_text(render_rules(template, settings))
    for case in settings.path("configs/prometheus/tests").glob("*.yml"):
        shutil.copy(case, tmp_path / case.name)
    return tmp_path


def _promtool() -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make bootstrap` installs Debian's prometheus package"
    return promtool


def test_rules_pass_promtool_check(rendered: Path) -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", "rules.yml"], cwd=rendered, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_their_unit_tests(rendered: Path) -> None:
    cases = sorted(p.name for p in rendered.glob("*_test.yml"))
    assert cases
    result = subprocess.run(
        [_promtool(), "test", "rules", *cases], cwd=rendered, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test(rendered: Path) -> None:
    rules = yaml.safe_load((rendered / "rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tested = {
        case["alertname"]
        for path in rendered.glob("*_test.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - tested == set()


def test_a_threshold_comes_from_the_settings() -> None:
    settings = load_settings(monitoring={"alerts": {"fraud_alerts_per_5m": 25, "scorer_p99_seconds": 2.5}})
    rules = render_rules(settings.path(settings.monitoring.rules_file).read_text(), settings)
    assert '{decision=~"REVIEW|BLOCK"}[5m])) > 25\n' in rules
    assert "> 2.5\n" in rules and "<<" not in rules


def test_an_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(KeyError, match="no_such_threshold"):
        render_rules("expr: up > <<no_such_threshold>>", load_settings())
