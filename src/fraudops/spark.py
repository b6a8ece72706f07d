"""The SparkSession used by the scorer and the tests: Kafka connector jars from the stack, loopback only."""

from __future__ import annotations

import os
import sys
from typing import Any

from fraudops.settings import Settings
from fraudops.stack.layout import StackLayout


def build_session(settings: Settings, app_name: str, master: str = "local[2]", **conf: str) -> Any:
    from pyspark.sql import SparkSession

    jars = sorted((StackLayout(settings.data_dir).lib / "spark").glob("*.jar"))
    if not jars:
        raise FileNotFoundError("Spark Kafka connector jars missing: run `make up` (fraudops stack install)")
    # executors must run the venv's Python, not the system one
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", settings.stack.host)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.jars", ",".join(str(j) for j in jars))
        .config("spark.ui.port", str(settings.stack.ports.spark_ui))
        .config("spark.sql.shuffle.partitions", "4")
        # a deep stack avoids the StackOverflowError some query stops log
        .config("spark.driver.extraJavaOptions", "-Xss16m")
        .config("spark.executor.extraJavaOptions", "-Xss16m")
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
