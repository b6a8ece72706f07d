"""The fraud database's login roles (one table of role -> grants) and who logs in as which; that each role
is refused outside its grant is shown on the real stack in tests/integration/test_fraud_roles_on_stack.py."""

from __future__ import annotations

import re
from pathlib import Path

from dotenv import dotenv_values

from fraudops import fraud_db
from fraudops.config.settings import load_settings
from fraudops.connections import FRAUD_ROLES, fraud_role, pipeline_dsn, producer_dsn
from fraudops.context import Context
from fraudops.stack.postgres import fraud_grants, role_grants

# privileges that change a table's shape or throw rows away: no role but the owner holds them
DESTRUCTIVE = re.compile(r"\b(ALL|DELETE|TRUNCATE|REFERENCES|TRIGGER|CREATE|MAINTAIN)\b")


def _privileges(who: str) -> dict[str, set[str]]:
    """table (or SEQUENCE name) -> privileges of ``who``'s entry."""
    out: dict[str, set[str]] = {}
    for privileges, target in fraud_grants()[who].objects:
        out.setdefault(target, set()).update(p.strip() for p in privileges.split(","))
    return out


def test_every_role_has_one_grants_entry_and_a_setting_and_a_password() -> None:
    settings = load_settings()
    assert set(fraud_grants()) == set(FRAUD_ROLES)
    names = {who: fraud_role(settings, who) for who in FRAUD_ROLES}
    assert names["pipeline"] == settings.postgres.pipeline_role == "fraud_pipeline"
    assert names["producer"] == settings.postgres.producer_role == "fraud_producer"
    assert names["scorer"] == settings.postgres.scorer_role
    assert len(set(names.values())) == len(names)
    assert not set(names.values()) & set(settings.postgres.databases)  # never an owner role


def test_every_password_is_generated_from_an_example_file() -> None:
    generated = {}
    for example in (Path(__file__).parents[2] / "env").glob("*.env.example"):
        generated.update(dotenv_values(example))
    for who, (_, secret) in FRAUD_ROLES.items():
        assert generated.get(secret) == "<generate:token>", (who, secret)


def test_no_role_gets_ddl_delete_or_truncate_and_grants_name_real_tables() -> None:
    for who, grants in fraud_grants().items():
        assert grants.database in ("CONNECT", "CONNECT, TEMPORARY"), who
        for privileges, target in grants.objects:
            assert not DESTRUCTIVE.search(privileges), (who, privileges, target)
            if target.startswith("SEQUENCE "):  # <table>_<bigserial column>_seq
                sequence = target.removeprefix("SEQUENCE ")
                assert any(
                    sequence.startswith(t + "_") and f"\n    {sequence[len(t) + 1 : -4]} bigserial" in ddl
                    for t, ddl in fraud_db.TABLES.items()
                ), (who, target)
            else:
                assert re.sub(r" \(.*\)$", "", target) in fraud_db.TABLES, (who, target)


def test_the_pipeline_reads_history_and_writes_its_audit_rows_only() -> None:
    assert _privileges("pipeline") == {
        # extract: transactions and the labels known at the cutoff
        "transactions_raw": {"SELECT"},
        "fraud_labels": {"SELECT"},
        # the audit log's upsert: a retried task rewrites its own rows
        "model_metadata": {"SELECT", "INSERT", "UPDATE"},
        "SEQUENCE model_metadata_id_seq": {"USAGE"},
        # the drift check: scored traffic in, its report out
        "transactions_with_score": {"SELECT"},
        "drift_reports": {"INSERT"},
    }
    assert set(fraud_db.TRAINING_TABLES) <= set(_privileges("pipeline"))
    assert fraud_grants()["pipeline"].database == "CONNECT"


def test_the_producer_appends_transactions_and_labels_only() -> None:
    assert _privileges("producer") == {
        "transactions_raw": {"SELECT", "INSERT"},
        "fraud_labels": {"SELECT", "INSERT"},
    }
    # its COPY goes through a temporary staging table
    assert fraud_grants()["producer"].database == "CONNECT, TEMPORARY"


def test_grant_statements_quote_the_role() -> None:
    assert role_grants("producer", 'odd"name') == [
        'GRANT SELECT, INSERT ON transactions_raw TO "odd""name"',
        'GRANT SELECT, INSERT ON fraud_labels TO "odd""name"',
    ]


def test_the_pipeline_and_the_producer_log_in_as_their_own_roles() -> None:
    settings = load_settings()
    secrets = {"PIPELINE_DB_PASSWORD": "p@ss/word", "PRODUCER_DB_PASSWORD": "a:b", "FRAUD_DB_PASSWORD": "x"}
    host = f"{settings.stack.host}:{settings.stack.ports.postgres}"
    assert pipeline_dsn(settings, secrets) == f"postgresql://fraud_pipeline:p%40ss%2Fword@{host}/fraud"
    assert producer_dsn(settings, secrets) == f"postgresql://fraud_producer:a%3Ab@{host}/fraud"
    # every step, DAG task and manual promote / rollback goes through the context's dsn and audit log
    ctx = Context.of(settings, secrets, registry=None, lake=None, publish=None)
    assert ctx.dsn == pipeline_dsn(settings, secrets)
    assert ctx.producer_dsn == producer_dsn(settings, secrets)
