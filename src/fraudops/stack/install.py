"""Installs what the native stack runs that pip does not: the MinIO server (built from its Go module) and
the Kafka broker and Spark connector jars (from Maven Central). Each install is skipped when its pinned
version is already in place, so a second `make up` downloads and builds nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from fraudops.config.settings import Settings
from fraudops.stack.layout import StackLayout

MINIO_MODULE = "github.com/minio/minio"


class InstallError(RuntimeError):
    pass


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise InstallError(f"`{tool}` not found on PATH: {hint}")
    return path


def _marker_matches(marker: Path, expected: str) -> bool:
    return marker.is_file() and marker.read_text().strip() == expected


def _go_install(
    module: str, version: str, layout: StackLayout, log: Callable[[str], object], why: str
) -> Path:
    """The binary of the Go module ``module`` at ``version``, built once into the stack's bin folder."""
    name = module.rsplit("/", 1)[-1]
    binary = layout.bin / name
    marker = layout.bin / f"{name}.version"
    if binary.is_file() and _marker_matches(marker, version):
        return binary
    go = _require("go", f"install Go (https://go.dev/dl) to build {name}")
    log(f"building {name} {version} from its Go module ({why})")
    env = {**os.environ, "GOBIN": str(layout.bin), "CGO_ENABLED": "0"}
    subprocess.run([go, "install", f"{module}@{version}"], env=env, check=True, cwd=layout.root)
    marker.write_text(version + "\n")
    return binary


def ensure_minio(settings: Settings, layout: StackLayout, log=print) -> Path:
    return _go_install(MINIO_MODULE, settings.stack.versions.minio, layout, log, "a few minutes, once")


STATSD_EXPORTER_MODULE = "github.com/prometheus/statsd_exporter"


def ensure_statsd_exporter(settings: Settings, layout: StackLayout, log=print) -> Path:
    """statsd_exporter (Airflow's StatsD metrics for Prometheus), built from its Go module: Debian
    bookworm does not package it."""
    return _go_install(STATSD_EXPORTER_MODULE, settings.stack.versions.statsd_exporter, layout, log, "once")


def ensure_jars(settings: Settings, target: Path, pom: Path, log=print) -> Path:
    """Copy the dependencies of ``pom`` into the folder ``target``; keyed by the pom's content hash."""
    name = target.name
    marker = target / ".pom.sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if _marker_matches(marker, digest):
        return target
    mvn = _require("mvn", "install Maven (apt-get install maven)")
    log(f"fetching {name} jars from Maven Central ({pom.relative_to(settings.project_root)})")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        check=True,
    )
    (staging / ".pom.sha256").write_text(digest + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def ensure_all(settings: Settings, layout: StackLayout, log=print) -> None:
    layout.create()
    ensure_jars(settings, layout.lib / "kafka", settings.path("kafka/pom.xml"), log)
    if settings.spark_jars_dir is not None:  # empty spark.jars_dir: the connector is on Spark's class path
        ensure_jars(settings, settings.spark_jars_dir, settings.path("spark-jobs/pom.xml"), log)
    ensure_minio(settings, layout, log)
    from fraudops.stack.monitoring import check_installed

    check_installed(settings)
    ensure_jars(settings, layout.lib / "jmx", settings.path("kafka/jmx-exporter.pom.xml"), log)
    ensure_statsd_exporter(settings, layout, log)


def postgres_bindir() -> Path:
    """The newest PostgreSQL server installed from Debian's packages."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)
    )
    if not candidates:
        raise InstallError(
            "PostgreSQL server not installed: run `make bootstrap` (apt-get install postgresql)"
        )
    return candidates[-1].parent
