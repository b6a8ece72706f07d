"""Where the scorer keeps its checkpoints: a local folder natively, object storage (s3a) in compose."""

from __future__ import annotations

from pathlib import Path

from fraudops.config.settings import load_settings
from fraudops.scoring.job import (
    ScorerOptions,
    checkpoint_location,
    failure_message,
    is_local,
    retire_customer_state,
    s3a_conf,
    session_conf,
)


def test_relative_checkpoints_live_in_the_data_folder() -> None:
    settings = load_settings()
    options = ScorerOptions.from_settings(settings, dsn="postgresql://unused")
    assert options.checkpoint_location == str(settings.data_dir / "data/checkpoints/score_transactions")
    assert is_local(options.checkpoint_location)
    assert checkpoint_location(Path("/srv"), "/abs/ckpt") == "/abs/ckpt"


def test_object_storage_checkpoints_stay_uris(monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_SCORER__CHECKPOINT_DIR", "s3a://fraud-lake/checkpoints/score")
    options = ScorerOptions.from_settings(load_settings(), dsn="postgresql://unused")
    assert options.checkpoint_location == "s3a://fraud-lake/checkpoints/score"
    assert not is_local(options.checkpoint_location)
    assert is_local("file:///tmp/ckpt")


def test_s3a_conf_points_at_the_stack_object_store(monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_STACK__HOSTS__MINIO", "minio")
    conf = s3a_conf(load_settings())
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    # the launch configuration reaches the JVM's command line: no key in it
    assert not any("key" in name for name in conf)


def test_local_checkpoints_need_no_object_store_settings() -> None:
    settings = load_settings()
    conf = session_conf(settings, ScorerOptions.from_settings(settings, dsn="postgresql://unused"))
    assert not any(key.startswith("spark.hadoop.fs.s3a") for key in conf)
    # idle customers expire when data arrives, not in empty micro-batches every trigger
    assert conf["spark.sql.streaming.noDataMicroBatches.enabled"] == "false"


def test_an_old_state_on_object_storage_tells_what_to_do() -> None:
    spark_error = (
        "[STREAMING_STATEFUL_OPERATOR_NOT_MATCH_IN_STATE_METADATA] Streaming stateful operator name does not"
        " match\nmore"
    )
    message = failure_message(spark_error, "s3a://lake/ckpt")
    assert "move its `state` folder out" in message and "s3a://lake/ckpt" in message
    assert failure_message("boom", "/data/ckpt") == "scorer query failed: boom"


def test_the_stateful_scorers_state_is_moved_out_of_a_local_checkpoint(tmp_path) -> None:
    checkpoint = tmp_path / "score_transactions"
    (checkpoint / "state" / "0" / "0").mkdir(parents=True)
    (checkpoint / "state" / "0" / "_metadata").mkdir()
    (checkpoint / "offsets").mkdir()
    (checkpoint / "offsets" / "69").write_text("v1")
    moved = retire_customer_state(checkpoint)
    assert moved is not None and moved.parent == tmp_path and (moved / "0" / "_metadata").is_dir()
    assert not (checkpoint / "state").exists()
    assert (checkpoint / "offsets" / "69").read_text() == "v1", "the offsets stay: the scorer resumes"
    assert retire_customer_state(checkpoint) is None


def test_promotion_and_the_scorer_share_one_champion_alias(monkeypatch) -> None:
    from fraudops.config.settings import load_settings
    from fraudops.context import Context

    monkeypatch.setenv("FRAUDOPS_MLFLOW__CHAMPION_ALIAS", "production")
    monkeypatch.setenv("FRAUDOPS_MLFLOW__PREVIOUS_ALIAS", "production-before")
    settings = load_settings()
    ctx = Context.of(settings, {})
    assert ctx.registry.champion_alias == "production"
    assert ctx.registry.previous_alias == "production-before"
    assert ScorerOptions.from_settings(settings, dsn="postgresql://x").alias == "production"
