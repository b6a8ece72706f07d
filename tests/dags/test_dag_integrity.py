"""Every DAG imports cleanly, carries tags, retries and docs, and makes no network call while parsing."""

from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.dags


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    from fraudops.config.settings import load_settings

    real_connect = socket.socket.connect

    def refuse(self, address):  # parsing a DAG file must never reach a service
        raise AssertionError(f"network call at parse time to {address}")

    socket.socket.connect = refuse
    try:
        return DagBag(dag_folder=str(load_settings().path("dags")))
    finally:
        socket.socket.connect = real_connect


def test_dags_import_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAG found"


def test_dags_have_tags_retries_and_docs(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"
