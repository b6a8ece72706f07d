"""The SparkSession used by the scorer and the tests, built from the settings: the master (the native
stack's standalone cluster by default, ``local[N]`` by setting), the Kafka connector jars of
``spark.jars_dir``, and the addresses executors reach the driver at."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fraudops.config.settings import Settings


def is_cluster(master: str) -> bool:
    """A standalone cluster (executors in other JVMs, maybe on other machines), not ``local[N]``."""
    return master.startswith("spark://")


def connector_jars(settings: Settings) -> list[Path]:
    """The jars of ``spark.jars_dir``; none when it is empty (the connector is on Spark's class path)."""
    if settings.spark_jars_dir is None:
        return []
    jars = sorted(settings.spark_jars_dir.glob("*.jar"))
    if not jars:
        raise FileNotFoundError(
            f"Spark Kafka connector jars missing in {settings.spark_jars_dir}: run `make up` "
            "(fraudops stack install) or set spark.jars_dir"
        )
    return jars


def session_conf(settings: Settings, master: str, jars: Sequence[Path]) -> dict[str, str]:
    """The Spark configuration of a session on ``master``: what the settings say, nothing read from disk."""
    conf = {
        "spark.master": master,
        "spark.ui.port": str(settings.stack.ports.spark_ui),
        "spark.sql.shuffle.partitions": "4",
        # a deep stack avoids the StackOverflowError some query stops log
        "spark.driver.extraJavaOptions": "-Xss16m",
        "spark.executor.extraJavaOptions": "-Xss16m",
        # where the driver listens, and the address it gives executors to call back on
        "spark.driver.bindAddress": settings.stack.host,
        "spark.driver.host": settings.spark_driver_host,
    }
    if jars:
        # on the driver's class path, and shipped to every executor from the driver's file server
        conf["spark.jars"] = ",".join(str(j) for j in jars)
    if is_cluster(master):
        spark = settings.spark
        conf["spark.executor.cores"] = str(spark.executor_cores)
        conf["spark.executor.memory"] = spark.executor_memory
        if spark.cores_max:
            conf["spark.cores.max"] = str(spark.cores_max)
    return conf


def build_session(settings: Settings, app_name: str, master: str | None = None, **conf: str) -> Any:
    """A session on ``master`` (default: ``settings.spark_master_url``); ``conf`` adds or overrides keys."""
    from pyspark.sql import SparkSession

    # executors would run the venv's Python, not the system one (the scorer runs no Python on executors)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", settings.stack.host)
    builder = SparkSession.builder.appName(app_name)
    merged = session_conf(settings, master or settings.spark_master_url, connector_jars(settings))
    for key, value in {**merged, **conf}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
