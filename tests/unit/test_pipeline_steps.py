"""The retraining steps' decision paths with in-memory registry, lake and audit log and real models:
first champion, promotion, rejection, dry run, stale decision, re-run, failed alias move, manual
promotion and rollback. The same steps run on the real MLflow, MinIO, Postgres and Kafka in
tests/integration/test_retraining_dag.py and test_promote_cli.py."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from fraudops import pipeline
from fraudops.config.model import SplitSettings, XGBoostParams
from fraudops.config.settings import Settings, load_settings
from fraudops.context import Context
from fraudops.features import FEATURE_NAMES, feature_matrix
from fraudops.model_families import Dataset, fit_xgboost
from fraudops.signals import ModelUpdate
from fraudops.windows import windows_at
from memory_resources import MemoryAudit, MemoryLake, MemoryRegistry


@dataclass
class Env:
    ctx: Context
    registry: MemoryRegistry
    lake: MemoryLake
    audit: MemoryAudit
    published: list[ModelUpdate]
    cutoff: pd.Timestamp
    features_uri: str


def _settings() -> Settings:
    s = load_settings()
    split = SplitSettings(train_days=21, validation_days=7, gap_days=7, test_days=14)
    return s.model_copy(
        update={
            "training": s.training.model_copy(update={"split": split, "latency_rows": 20}),
            "pipeline": s.pipeline.model_copy(
                update={
                    "promotion": s.pipeline.promotion.model_copy(
                        update={"min_auc_roc": 0.5, "min_average_precision": 0.05}
                    )
                }
            ),
        }
    )


@pytest.fixture(scope="module")
def models(small_features) -> dict[str, object]:
    """A strong and a weak real XGBoost model, fitted before the test window."""
    cutoff = small_features["tx_datetime"].max().floor("D")
    windows = windows_at(small_features, _settings().training.split, cutoff)
    before = small_features[small_features["tx_datetime"] < windows.test_start]
    X, y = feature_matrix(before), before["tx_fraud"].to_numpy()
    half = len(y) * 3 // 4

    def fit(rounds: int, depth: int, columns: slice) -> object:
        Xc = X.copy()
        Xc[:, columns] = 0.0  # the weak one does not see most features
        return fit_xgboost(
            Dataset(Xc[:half], y[:half]), Dataset(Xc[half:], y[half:]),
            XGBoostParams(n_estimators=rounds, max_depth=depth),
            class_weight="sqrt", threads=1, seed=1, early_stopping_rounds=rounds,
        )  # fmt: skip

    return {"strong": fit(60, 4, slice(0, 0)), "weak": fit(2, 1, slice(1, None))}


@pytest.fixture
def env(small_features) -> Env:
    settings = _settings()
    registry, lake, audit, published = MemoryRegistry(settings), MemoryLake(), MemoryAudit(), []
    ctx = Context.of(settings, {}, registry=registry, lake=lake, audit=audit, publish=published.append)
    uri = lake.write(small_features, lake.uri("run-1", "features"))
    cutoff = small_features["tx_datetime"].max().floor("D") + pd.Timedelta(days=7)
    return Env(ctx, registry, lake, audit, published, cutoff, uri)


def _candidate(env: Env, model: object, family: str = "xgboost") -> dict:
    version = env.registry.add(model, {"family": family, pipeline.RUN_KEY_TAG: "run-1"})
    return {"family": family, "version": version, "run_id": env.registry.get(version).run_id}


def _cycle(env: Env, candidates: list[dict], run_key: str = "run-1", **kw) -> tuple[dict, dict]:
    decision = pipeline.evaluate(env.ctx, env.features_uri, candidates, env.cutoff, kw.get("force", False),
                                 run_key)  # fmt: skip
    return decision, pipeline.promote(env.ctx, decision, kw.get("dry_run", False), run_key)


def test_the_first_candidate_becomes_champion_and_is_signalled(env, models) -> None:
    decision, promotion = _cycle(env, [_candidate(env, models["strong"])])
    assert decision["promote"] and decision["reason"].startswith("first champion")
    assert promotion == {**promotion, "promoted": True, "changed": True, "version": "1", "previous": None}
    assert env.registry.champion().version == "1"
    assert pipeline.signal(env.ctx, promotion)
    assert [(u.version, u.alias, u.action) for u in env.published] == [("1", "champion", "promote")]
    assert [(r.event, r.decision) for r in env.audit.rows] == [
        ("evaluation", "candidate"), ("promotion", "promoted"),
    ]  # fmt: skip


def test_a_worse_candidate_is_rejected_and_nothing_is_signalled(env, models) -> None:
    env.registry.set_champion(env.registry.add(models["strong"], {"family": "xgboost"}))
    decision, promotion = _cycle(env, [_candidate(env, models["weak"])])
    assert not decision["promote"] and "does not beat champion v1" in decision["reason"]
    assert promotion["promoted"] is False and env.registry.champion().version == "1"
    assert not pipeline.signal(env.ctx, promotion) and env.published == []
    champion_row = next(r for r in env.audit.rows if r.decision == "champion")
    assert champion_row.model_version == "1" and champion_row.metrics["auc_roc"] > 0.5
    assert env.audit.rows[-1].decision == "keep_champion"


def test_a_better_candidate_replaces_the_champion(env, models) -> None:
    env.registry.set_champion(env.registry.add(models["weak"], {"family": "xgboost"}))
    _, promotion = _cycle(env, [_candidate(env, models["strong"])])
    assert promotion["changed"] and promotion["previous"] == "1"
    assert (env.registry.champion().version, env.registry.previous().version) == ("2", "1")


def test_force_waives_the_comparison_not_the_gates(env, models) -> None:
    env.registry.set_champion(env.registry.add(models["strong"], {"family": "xgboost"}))
    decision, promotion = _cycle(env, [_candidate(env, models["weak"])], force=True)
    assert decision["reason"].startswith("forced") and promotion["changed"]


def test_a_dry_run_decides_and_records_but_moves_nothing(env, models) -> None:
    decision, promotion = _cycle(env, [_candidate(env, models["strong"])], dry_run=True)
    assert decision["promote"] and promotion["promoted"] is False
    assert promotion["reason"].startswith("dry run: first champion")
    assert env.registry.champion() is None and env.registry.moves == []
    assert env.audit.rows[-1].decision == "dry_run"


def test_a_stale_decision_is_refused(env, models) -> None:
    env.registry.set_champion(env.registry.add(models["weak"], {"family": "xgboost"}))
    decision = pipeline.evaluate(env.ctx, env.features_uri, [_candidate(env, models["strong"])], env.cutoff)
    env.registry.set_champion(env.registry.add(models["weak"], {"family": "catboost"}))  # someone else
    with pytest.raises(RuntimeError, match="champion moved to v3 during the run"):
        pipeline.promote(env.ctx, decision, run_key="run-1")
    assert env.registry.champion().version == "3"
    assert env.audit.rows[-1].decision == "stale_decision"


def test_a_failed_alias_move_leaves_the_champion_alone(env, models) -> None:
    env.registry.set_champion(env.registry.add(models["weak"], {"family": "xgboost"}))
    decision = pipeline.evaluate(env.ctx, env.features_uri, [_candidate(env, models["strong"])], env.cutoff)
    env.registry.fail_next_move["champion"] = ConnectionError("MLflow went away")
    with pytest.raises(ConnectionError):
        pipeline.promote(env.ctx, decision, run_key="run-1")
    assert env.registry.champion().version == "1" and env.registry.previous() is None
    assert not any(r.event == "promotion" for r in env.audit.rows)
    # the retry promotes, once
    assert pipeline.promote(env.ctx, decision, run_key="run-1")["changed"]
    assert pipeline.promote(env.ctx, decision, run_key="run-1") == {
        "promoted": True, "changed": False, "version": "2", "reason": "already champion (re-run)",
        "run_id": "run-2",
    }  # fmt: skip


def test_a_retried_task_rewrites_its_audit_rows(env, models) -> None:
    candidates = [_candidate(env, models["strong"]), _candidate(env, models["weak"], "catboost")]
    _cycle(env, candidates, dry_run=True)
    first = [(r.key, r.event, r.decision) for r in env.audit.rows]
    _cycle(env, candidates, dry_run=True)
    assert [(r.key, r.event, r.decision) for r in env.audit.rows] == first
    assert len({r.key for r in env.audit.rows}) == len(env.audit.rows) == 3
    _cycle(env, candidates, run_key="run-2", dry_run=True)  # another run adds its own
    assert len(env.audit.rows) == 6


def test_manual_promotion_and_rollback(env, models) -> None:
    for model in (models["weak"], models["strong"]):
        env.registry.add(model, {"family": "xgboost"})
    assert pipeline.promote_version(env.ctx, "1")["previous"] is None
    assert pipeline.promote_version(env.ctx, "2", "better last week")["previous"] == "1"
    back = pipeline.rollback(env.ctx)
    assert (back["version"], back["previous"]) == ("1", "2")
    actions = [(u.version, u.action) for u in env.published]
    assert actions == [("1", "manual"), ("2", "manual"), ("1", "rollback")]
    assert [(r.event, r.decision, r.key) for r in env.audit.rows] == [
        ("promotion", "manual", None), ("promotion", "manual", None), ("rollback", "rollback", None),
    ]  # fmt: skip


def test_extract_from_a_lake_snapshot_and_build_features(env, small_transactions) -> None:
    source = env.lake.write(small_transactions.head(5000), "memory://lake/imported.parquet")
    snapshot = pipeline.extract(env.ctx, env.cutoff, 30, "run-9", source_uri=source)
    assert snapshot == env.lake.uri("run-9", "transactions")
    features = env.lake.read(pipeline.build_feature_snapshot(env.ctx, snapshot, "run-9"))
    assert len(features) == 5000 and set(FEATURE_NAMES) <= set(features.columns)


def test_run_params_fill_the_configurations_defaults() -> None:
    settings = load_settings()
    params = pipeline.RunParams.from_dag(
        settings,
        {"cutoff": "2026-05-01T02:00:00+02:00", "window_days": 0, "families": [], "model_overrides": {},
         "snapshot_uri": "", "dry_run": False, "force": True},
        None,
    )  # fmt: skip
    assert params.cutoff == pd.Timestamp("2026-05-01 00:00:00")
    assert params.window_days == settings.pipeline.window_days
    assert params.families == tuple(settings.pipeline.families)
    assert params.snapshot_uri is None and params.force
    assert pipeline.RunParams.of(settings, "2026-05-01", families=("catboost",)).families == ("catboost",)
