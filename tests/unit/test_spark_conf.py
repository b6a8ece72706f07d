"""The Spark session and the native standalone cluster, built from the settings: no Spark started."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest
from pydantic import ValidationError

from fraudops.config.settings import Settings, load_settings
from fraudops.spark import connector_jars, is_cluster, session_conf
from fraudops.stack import SERVICE_NAMES
from fraudops.stack.health import Health
from fraudops.stack.layout import StackLayout
from fraudops.stack.manager import Stack
from fraudops.stack.services import build_services
from fraudops.stack.spark_cluster import (
    MASTER_CLASS,
    WORKER_CLASS,
    driver_health,
    master_health,
    worker_health,
)

JARS = [Path("/jars/spark-sql-kafka.jar"), Path("/jars/kafka-clients.jar")]


@pytest.fixture(autouse=True)
def _no_spark_env(monkeypatch) -> None:
    """The committed configs/fraudops.yaml, whatever the shell running the tests exports."""
    for key in [k for k in os.environ if k.startswith(("FRAUDOPS_SPARK__", "FRAUDOPS_STACK__"))]:
        monkeypatch.delenv(key)


def _services(settings: Settings, tmp_path: Path) -> dict:
    return build_services(settings, defaultdict(str), StackLayout(tmp_path))


# -- settings ---------------------------------------------------------------------------------------------
def test_the_scorer_runs_on_the_native_cluster_by_default() -> None:
    settings = load_settings()
    assert settings.spark_master_url == settings.native_spark_master_url == "spark://127.0.0.1:7077"
    assert settings.spark_driver_host == settings.stack.host
    assert settings.spark_jars_dir == settings.data_dir / "lib" / "spark"
    assert StackLayout(settings.data_dir).lib / "spark" == settings.spark_jars_dir  # where `make up` put them
    ports = settings.stack.ports
    assert len({ports.spark_ui, ports.spark_master, ports.spark_master_ui, ports.spark_worker_ui}) == 4
    assert ports.airflow not in (ports.spark_master_ui, ports.spark_worker_ui)


def test_local_mode_and_other_clusters_by_setting(monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_SPARK__MASTER", "local[2]")
    assert load_settings().spark_master_url == "local[2]"
    monkeypatch.setenv("FRAUDOPS_SPARK__MASTER", "spark://spark-master:7077")
    monkeypatch.setenv("FRAUDOPS_SPARK__DRIVER_HOST", "spark-scorer")
    settings = load_settings()
    assert settings.spark_master_url == "spark://spark-master:7077"
    assert settings.native_spark_master_url == "spark://127.0.0.1:7077"
    assert settings.spark_driver_host == "spark-scorer"
    monkeypatch.delenv("FRAUDOPS_SPARK__MASTER")
    monkeypatch.setenv("FRAUDOPS_STACK__PORTS__SPARK_MASTER", "17077")
    monkeypatch.setenv("FRAUDOPS_STACK__HOST", "10.0.0.5")
    assert load_settings().spark_master_url == "spark://10.0.0.5:17077"


def test_jars_folder(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FRAUDOPS_SPARK__JARS_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.spark_jars_dir == tmp_path
    with pytest.raises(FileNotFoundError, match="jars missing"):
        connector_jars(settings)
    (tmp_path / "b.jar").touch()
    (tmp_path / "a.jar").touch()
    (tmp_path / ".pom.sha256").touch()
    assert connector_jars(settings) == [tmp_path / "a.jar", tmp_path / "b.jar"]
    # empty: the connector is on Spark's own class path (the compose image), nothing is shipped
    monkeypatch.setenv("FRAUDOPS_SPARK__JARS_DIR", "")
    settings = load_settings()
    assert settings.spark_jars_dir is None and connector_jars(settings) == []
    assert "spark.jars" not in session_conf(settings, "spark://m:7077", [])


def test_unknown_spark_keys_are_rejected(monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_SPARK__EXECUTOR_CORE", "2")
    with pytest.raises(ValidationError):
        load_settings()


# -- the session's configuration --------------------------------------------------------------------------
def test_cluster_session_conf() -> None:
    settings = load_settings()
    conf = session_conf(settings, settings.spark_master_url, JARS)
    spark = settings.spark
    assert conf["spark.master"] == "spark://127.0.0.1:7077" and is_cluster(conf["spark.master"])
    assert conf["spark.jars"] == "/jars/spark-sql-kafka.jar,/jars/kafka-clients.jar"
    assert conf["spark.executor.cores"] == str(spark.executor_cores)
    assert conf["spark.executor.memory"] == spark.executor_memory
    assert conf["spark.cores.max"] == str(spark.cores_max)
    # executors call the driver back on the stack's address; it listens there only
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.ui.port"] == str(settings.stack.ports.spark_ui)
    # a scorer fits the worker twice (the service and a test's or a benchmark's scorer side by side)
    assert 2 * spark.cores_max <= spark.worker_cores
    assert 2 * _mib(spark.executor_memory) <= _mib(spark.worker_memory)


def test_local_session_conf_has_no_executors() -> None:
    settings = load_settings()
    conf = session_conf(settings, "local[2]", JARS)
    assert conf["spark.master"] == "local[2]" and not is_cluster("local[2]")
    assert not {k for k in conf if k.startswith(("spark.executor.cores", "spark.executor.memory"))}
    assert "spark.cores.max" not in conf


def test_cores_max_zero_takes_the_whole_cluster(monkeypatch) -> None:
    monkeypatch.setenv("FRAUDOPS_SPARK__CORES_MAX", "0")
    conf = session_conf(load_settings(), "spark://m:7077", JARS)
    assert "spark.cores.max" not in conf
    assert conf["spark.executor.cores"] == str(load_settings().spark.executor_cores)


def _mib(size: str) -> int:
    units = {"m": 1, "g": 1024}
    return int(size[:-1]) * units[size[-1].lower()]


# -- the native cluster's services ------------------------------------------------------------------------
def test_master_and_worker_services(tmp_path) -> None:
    settings = load_settings()
    services = _services(settings, tmp_path)
    names = list(services)
    assert names.index("spark-master") < names.index("spark-worker") < names.index("spark-scorer")
    assert [n for n in SERVICE_NAMES if n.startswith("spark-")] == [
        "spark-master",
        "spark-worker",
        "spark-scorer",
    ]
    ports = settings.stack.ports
    master, worker = services["spark-master"], services["spark-worker"]
    assert not master.optional and not worker.optional  # `make up` starts them
    argv = master.spec.argv
    assert argv[0].endswith("pyspark/bin/spark-class") and argv[1] == MASTER_CLASS
    assert argv[argv.index("--host") + 1] == settings.stack.host
    assert argv[argv.index("--port") + 1] == str(ports.spark_master)
    assert argv[argv.index("--webui-port") + 1] == str(ports.spark_master_ui)
    argv = worker.spec.argv
    assert argv[1:3] == [WORKER_CLASS, settings.native_spark_master_url]
    assert argv[argv.index("--host") + 1] == settings.stack.host
    assert argv[argv.index("--cores") + 1] == str(settings.spark.worker_cores)
    assert argv[argv.index("--memory") + 1] == settings.spark.worker_memory
    assert argv[argv.index("--webui-port") + 1] == str(ports.spark_worker_ui)
    assert argv[argv.index("--work-dir") + 1] == str(tmp_path / "data" / "spark-worker")
    for service in (master, worker):
        env = service.spec.env
        assert env["SPARK_LOCAL_IP"] == env["SPARK_PUBLIC_DNS"] == settings.stack.host  # the UIs on loopback
        assert argv[0] == str(Path(env["SPARK_HOME"]) / "bin" / "spark-class")
        assert env["SPARK_DAEMON_MEMORY"] == settings.spark.daemon_memory
        assert "spark.master.rest.enabled=false" in env["SPARK_MASTER_OPTS"]
    assert worker.requires == ("spark-master",)
    assert services["spark-scorer"].requires == ("spark-master", "spark-worker")
    assert Stack._requirements(services, ["spark-scorer"]) == ["spark-master", "spark-worker"]
    assert Stack._requirements(services, ["spark-worker", "spark-scorer"]) == ["spark-master"]
    assert Stack._requirements(services, ["postgres"]) == []


def test_a_scorer_elsewhere_needs_no_native_cluster(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FRAUDOPS_SPARK__MASTER", "local[2]")
    services = _services(load_settings(), tmp_path)
    assert services["spark-scorer"].requires == ()
    assert services["spark-master"].optional and services["spark-worker"].optional  # `up` skips them


# -- health probes ----------------------------------------------------------------------------------------
def _fake_json(monkeypatch, answers: dict) -> None:
    def fake(url: str) -> dict:
        answer = answers[url]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr("fraudops.stack.spark_cluster._json", fake)


MASTER, WORKER = "http://m:8082", "http://w:8083"


def test_master_probe(monkeypatch) -> None:
    _fake_json(
        monkeypatch,
        {
            f"{MASTER}/json/": {
                "status": "ALIVE",
                "workers": [{"id": "w1", "state": "ALIVE"}, {"id": "w0", "state": "DEAD"}],
                "cores": 4,
                "coresused": 2,
                "activeapps": [{"id": "app-1"}],
            }
        },
    )
    health = master_health(MASTER)
    assert health.ok and health.detail == "ALIVE, 1 worker(s), 2/4 slots used, 1 application(s)"
    _fake_json(monkeypatch, {f"{MASTER}/json/": {"status": "STANDBY"}})
    assert not master_health(MASTER).ok


def test_worker_probe(monkeypatch) -> None:
    worker = {"id": "w1", "cores": 4, "coresused": 2, "memory": 2048, "memoryused": 1024, "executors": [{}]}
    _fake_json(
        monkeypatch,
        {f"{WORKER}/json/": worker, f"{MASTER}/json/": {"workers": [{"id": "w1", "state": "ALIVE"}]}},
    )
    health = worker_health(WORKER, MASTER)
    assert health.ok and health.detail == "2/4 slots, 1024/2048 MiB, 1 executor(s)"
    # up, but not (or no longer) registered with a live master
    _fake_json(monkeypatch, {f"{WORKER}/json/": worker, f"{MASTER}/json/": {"workers": []}})
    assert not worker_health(WORKER, MASTER).ok
    _fake_json(monkeypatch, {f"{WORKER}/json/": worker, f"{MASTER}/json/": ConnectionError("refused")})
    health = worker_health(WORKER, MASTER)
    assert not health.ok and "master unreachable" in health.detail


def test_scorer_probe_waits_for_the_application(monkeypatch) -> None:
    """The driver's UI says "Spark is starting up" (HTTP 200, plain text) before it serves its API."""
    driver = "http://d:4040"
    url = f"{driver}/api/v1/applications"
    _fake_json(monkeypatch, {url: ValueError("Expecting value: line 1 column 1")})
    assert driver_health(driver) == Health(False, "Spark is starting up")
    _fake_json(monkeypatch, {url: []})
    assert not driver_health(driver).ok
    _fake_json(monkeypatch, {url: [{"id": "app-20261130-0001", "name": "score_transactions"}]})
    health = driver_health(driver)
    assert health.ok and health.detail == "application app-20261130-0001"


# -- `make up` --------------------------------------------------------------------------------------------
def _up_calls(monkeypatch, tmp_path: Path) -> list[tuple[str, str]]:
    """What Stack.up starts and awaits, in order, with every installer and initialiser stubbed out."""
    import fraudops.stack.manager as manager

    calls: list[tuple[str, str]] = []
    for name in ("initdb", "init_databases", "ensure_buckets", "ensure_users"):
        monkeypatch.setattr(manager, name, lambda *a, **k: None)
    monkeypatch.setattr(manager, "ensure_secrets", lambda *a: {})
    monkeypatch.setattr(manager, "ensure_console_users", lambda *a: [])
    monkeypatch.setattr(manager, "init_accounts", lambda *a: {})
    monkeypatch.setattr(manager, "create_topics", lambda *a: {})
    monkeypatch.setattr(manager, "load_topic_specs", lambda *a: [])
    monkeypatch.setattr(manager.install, "ensure_all", lambda *a: None)
    monkeypatch.setattr(manager.install, "postgres_bindir", lambda: tmp_path)
    monkeypatch.setattr(Stack, "_secrets", lambda self: defaultdict(str))
    monkeypatch.setattr(Stack, "_init_airflow", lambda self, secrets: None)
    monkeypatch.setattr(Stack, "status", lambda self: [])
    monkeypatch.setattr(Stack, "_start", lambda self, service: calls.append(("start", service.name)))
    monkeypatch.setattr(Stack, "_wait", lambda self, service: calls.append(("wait", service.name)))
    monkeypatch.setenv("FRAUDOPS_STACK__DATA_DIR", str(tmp_path))
    Stack(load_settings(), log=lambda _: None).up()
    return calls


def test_up_starts_the_cluster_before_the_scorer_needs_it(monkeypatch, tmp_path) -> None:
    calls = _up_calls(monkeypatch, tmp_path)
    started = [name for action, name in calls if action == "start"]
    assert "spark-scorer" not in started  # optional: it needs a champion first
    assert calls.index(("wait", "spark-master")) < calls.index(("start", "spark-worker"))
    assert ("wait", "spark-worker") in calls


def test_up_skips_the_cluster_of_a_scorer_elsewhere(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FRAUDOPS_SPARK__MASTER", "local[2]")
    names = {name for _, name in _up_calls(monkeypatch, tmp_path)}
    assert not names & {"spark-master", "spark-worker", "spark-scorer"}
