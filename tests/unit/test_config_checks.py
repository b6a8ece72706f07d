"""Checks that span settings sections: the split's gap is the label delay, and the topics the config file
names are the ones the stack creates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from fraudops.config.model import LABEL_DELAY_DAYS, SplitSettings
from fraudops.config.settings import CONFIG_FILE, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, edit=None) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "kafka").mkdir()
    shutil.copy(REPO / "kafka" / "topics.yaml", tmp_path / "kafka" / "topics.yaml")
    config = yaml.safe_load((REPO / CONFIG_FILE).read_text())
    if edit:
        edit(config)
    (tmp_path / CONFIG_FILE).write_text(yaml.safe_dump(config))
    return tmp_path


def test_the_split_gap_must_be_the_label_delay() -> None:
    assert SplitSettings().gap_days == LABEL_DELAY_DAYS
    with pytest.raises(ValidationError, match="label delay"):
        SplitSettings(gap_days=LABEL_DELAY_DAYS + 1)


def test_the_committed_config_passes(tmp_path: Path) -> None:
    assert load_settings(_project(tmp_path)).scorer.source_topic == "transactions_stream"


def test_a_topic_the_spec_does_not_create_is_refused(tmp_path: Path) -> None:
    def rename(config: dict) -> None:
        config.setdefault("scorer", {})["dead_letters_topic"] = "dead_letter"

    with pytest.raises(SettingsError, match="scorer.dead_letters_topic=dead_letter"):
        load_settings(_project(tmp_path, rename))


def test_an_override_may_name_a_scratch_topic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDOPS_SCORER__SOURCE_TOPIC", "scratch-123")
    assert load_settings(_project(tmp_path)).scorer.source_topic == "scratch-123"
