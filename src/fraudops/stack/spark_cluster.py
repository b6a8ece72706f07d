"""The native Spark standalone cluster: one master and one worker from the pyspark distribution (its
``bin/spark-class``), run in the foreground under the process manager, bound to ``stack.host``.

docker-compose.yaml runs the same classes with the same ports and resources (a test compares them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fraudops.config.settings import Settings
from fraudops.stack.health import Health, http_json

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# no REST submission server (Spark 4 starts one on port 6066): the scorer connects as a client, and nobody
# should be able to submit drivers through an unauthenticated port
MASTER_OPTS = "-Dspark.master.rest.enabled=false"
# the worker deletes the folders (jars, executor logs) of applications that ended more than a day ago
WORKER_OPTS = "-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400"


def spark_home() -> Path:
    """The pyspark package: Spark's jars and launch scripts, without importing pyspark."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pyspark is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations)))


def master_args(settings: Settings, host: str) -> list[str]:
    ports = settings.stack.ports
    return [
        MASTER_CLASS,
        "--host",
        host,
        "--port",
        str(ports.spark_master),
        "--webui-port",
        str(ports.spark_master_ui),
    ]


def worker_args(settings: Settings, master_url: str, work_dir: str, host: str | None = None) -> list[str]:
    """A worker offering ``spark.worker_cores`` slots and ``spark.worker_memory`` to executors."""
    spark = settings.spark
    return [
        WORKER_CLASS,
        master_url,
        *(["--host", host] if host else []),
        "--cores",
        str(spark.worker_cores),
        "--memory",
        spark.worker_memory,
        "--webui-port",
        str(settings.stack.ports.spark_worker_ui),
        "--work-dir",
        work_dir,
    ]


def daemon_env(settings: Settings, home: Path) -> dict[str, str]:
    host = settings.stack.host
    return {
        "SPARK_HOME": str(home),
        # the web UIs bind here (the RPC endpoints take --host), and link to it
        "SPARK_LOCAL_IP": host,
        "SPARK_PUBLIC_DNS": host,
        "SPARK_DAEMON_MEMORY": settings.spark.daemon_memory,
        "SPARK_MASTER_OPTS": MASTER_OPTS,
        "SPARK_WORKER_OPTS": WORKER_OPTS,
    }


# -- health ----------------------------------------------------------------------------------------------
def _json(url: str) -> Any:
    return http_json(url)


def driver_health(driver_ui: str) -> Health:
    """The scorer's own UI lists its application: its SparkContext is up, registered with the cluster.

    While the context starts, the UI answers 200 with a plain-text "Spark is starting up", then 404 for a
    few seconds (longer on a cluster, while the master registers the application), so an HTTP status alone
    would call a scorer healthy that is not ready yet.
    """
    try:
        apps = _json(f"{driver_ui}/api/v1/applications")
    except ValueError:
        return Health(False, "Spark is starting up")
    if not apps:
        return Health(False, "no application yet")
    return Health(True, f"application {apps[0].get('id')}")


def master_health(master_ui: str) -> Health:
    state = _json(f"{master_ui}/json/")
    alive = [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
    detail = (
        f"{state.get('status')}, {len(alive)} worker(s), {state.get('coresused', 0)}/{state.get('cores', 0)} "
        f"slots used, {len(state.get('activeapps', []))} application(s)"
    )
    return Health(state.get("status") == "ALIVE", detail)


def worker_health(worker_ui: str, master_ui: str) -> Health:
    """The worker answers, and the master counts it among its ALIVE workers."""
    worker = _json(f"{worker_ui}/json/")
    try:
        workers = _json(f"{master_ui}/json/").get("workers", [])
    except Exception as exc:
        return Health(False, f"master unreachable ({type(exc).__name__})")
    mine = next((w for w in workers if w.get("id") == worker.get("id")), None)
    if mine is None or mine.get("state") != "ALIVE":
        return Health(False, f"not registered with the master ({mine.get('state') if mine else 'unknown'})")
    return Health(
        True,
        f"{worker.get('coresused', 0)}/{worker.get('cores', 0)} slots, "
        f"{worker.get('memoryused', 0)}/{worker.get('memory', 0)} MiB, "
        f"{len(worker.get('executors', []))} executor(s)",
    )
