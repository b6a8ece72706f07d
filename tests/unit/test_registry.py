"""The registry's alias logic (promotion, rollback, a failed alias move) and the signature check, on the
in-memory registry; the MLflow implementation runs the same logic on the real server in
tests/integration/test_promote_cli.py and test_registry_on_stack.py."""

from __future__ import annotations

import pytest

from fraudops.config.settings import load_settings
from fraudops.features import FEATURE_NAMES
from fraudops.registry import NoSuchVersion, SignatureMismatch, check_signature
from memory_resources import MemoryRegistry


@pytest.fixture
def registry() -> MemoryRegistry:
    registry = MemoryRegistry(load_settings())
    for family in ("xgboost", "catboost", "xgboost"):
        registry.add(object(), {"family": family})
    return registry


def test_aliases_come_from_the_settings(monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_MLFLOW__CHAMPION_ALIAS", "production")
    registry = MemoryRegistry(load_settings())
    registry.add(object())
    registry.set_champion("1")
    assert registry.aliases == {"production": "1"}


def test_promotion_moves_the_old_champion_to_previous(registry) -> None:
    assert registry.set_champion("1") is None
    assert registry.previous() is None
    assert registry.set_champion("2") == "1"
    assert (registry.champion().version, registry.previous().version) == ("2", "1")
    assert registry.champion().family == "catboost"


def test_promoting_the_champion_again_moves_nothing_else(registry) -> None:
    registry.set_champion("1")
    registry.set_champion("2")
    assert registry.set_champion("2") == "2"
    assert (registry.champion().version, registry.previous().version) == ("2", "1")


def test_rollback_swaps_champion_and_previous(registry) -> None:
    registry.set_champion("1")
    registry.set_champion("3")
    target, demoted = registry.rollback()
    assert (target.version, demoted) == ("1", "3")
    assert (registry.champion().version, registry.previous().version) == ("1", "3")


def test_rollback_without_previous_fails_clearly(registry) -> None:
    registry.set_champion("1")
    with pytest.raises(RuntimeError, match="no @previous version"):
        registry.rollback()
    assert registry.champion().version == "1"


def test_an_unknown_version_moves_no_alias(registry) -> None:
    registry.set_champion("1")
    with pytest.raises(NoSuchVersion):
        registry.set_champion("9")
    assert registry.aliases == {"champion": "1"}


def test_a_failed_champion_move_leaves_the_registry_as_it_was(registry) -> None:
    registry.set_champion("1")
    registry.set_champion("2")
    registry.fail_next_move["champion"] = ConnectionError("registry went away")
    with pytest.raises(ConnectionError):
        registry.set_champion("3")
    assert registry.aliases == {"champion": "2", "previous": "1"}


def test_a_failed_first_move_leaves_no_previous_behind(registry) -> None:
    registry.set_champion("1")
    registry.fail_next_move["champion"] = ConnectionError("registry went away")
    with pytest.raises(ConnectionError):
        registry.set_champion("2")
    assert registry.aliases == {"champion": "1"}


def test_load_refuses_a_model_that_takes_inputs_this_code_does_not_compute(registry) -> None:
    model = object()
    good = registry.add(model)
    assert registry.load(good) is model
    # an older champion on fewer of today's features, or in another order, still serves (by name)
    older = registry.add(model, inputs=list(reversed(FEATURE_NAMES))[1:])
    assert registry.load(older) is model
    retired = registry.add(model, inputs=list(FEATURE_NAMES)[:-1] + ["tx_amount_squared"])
    with pytest.raises(SignatureMismatch, match=r"unknown \['tx_amount_squared'\]"):
        registry.load(retired)
    twice = registry.add(model, inputs=[*FEATURE_NAMES, FEATURE_NAMES[0]])
    with pytest.raises(SignatureMismatch, match=rf"repeated \['{FEATURE_NAMES[0]}'\]"):
        registry.load(twice)


def test_a_model_without_signature_is_refused() -> None:
    with pytest.raises(SignatureMismatch, match="no input signature"):
        check_signature(None, "runs:/abc/model")
    with pytest.raises(SignatureMismatch, match="no input signature"):
        check_signature([], "runs:/abc/model")
    check_signature(list(FEATURE_NAMES), "runs:/abc/model")


def test_the_two_aliases_must_differ(monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_MLFLOW__PREVIOUS_ALIAS", "champion")
    with pytest.raises(ValueError, match="must differ"):
        MemoryRegistry(load_settings())
