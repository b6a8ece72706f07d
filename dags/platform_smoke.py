"""A tiny DAG that proves the platform runs tasks: scheduler -> Redis -> Celery worker -> api-server."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="platform_smoke",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["platform", "smoke"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=10)},
    doc_md="""
### Platform smoke test
Trigger it after `make up` to check that tasks run end to end on the Celery workers. Its one task returns
the host and process that ran it (see the XCom tab).
""",
)
def platform_smoke() -> None:
    @task
    def where_am_i() -> dict[str, str | int]:
        import os
        import socket

        return {"hostname": socket.gethostname(), "pid": os.getpid()}

    where_am_i()


platform_smoke()
