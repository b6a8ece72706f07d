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
    # a test holds the task open to read the task process's environment while it runs
    params={"hold_seconds": 0},
    doc_md="""
### Platform smoke test
Trigger it after `make up` to check that tasks run end to end on the Celery workers. Its one task returns
the host and process that ran it (see the XCom tab); `hold_seconds` keeps it running that long.
""",
)
def platform_smoke() -> None:
    @task
    def where_am_i(params: dict | None = None) -> dict[str, str | int]:
        import os
        import socket
        import time

        time.sleep(float((params or {}).get("hold_seconds", 0)))
        return {"hostname": socket.gethostname(), "pid": os.getpid()}

    where_am_i()


platform_smoke()
