"""docker-compose.yaml and its Dockerfiles, checked without a Docker engine.

The compose file must describe the native stack (fraudops.stack): the same service names, the ports of
configs/fraudops.yaml, the same Kafka durability settings, the same topic spec, the same Airflow
configuration (`fraudops stack airflow-env`) and no secret in the file. `docker-compose config` (Debian's
docker-compose 1.29) validates the syntax when it is installed; everything else is read from the YAML.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from unittest import mock

import pytest
import yaml

from fraudops.cli import main as cli_main
from fraudops.config.settings import CONFIG_FILE, Settings, load_settings
from fraudops.containers.compose import ONE_SHOT
from fraudops.secrets import COMPONENT_SECRETS, ensure_secrets, write_component_secrets
from fraudops.stack import SERVICE_NAMES
from fraudops.stack.airflow_env import airflow_environment, airflow_home
from fraudops.stack.kafka_nodes import DURABILITY, LOG4J2
from fraudops.stack.layout import StackLayout
from fraudops.stack.monitoring import MONITORING_NAMES, PACKAGES
from fraudops.stack.services import AIRFLOW_COMMANDS, CONTAINER_SERVICES
from fraudops.stack.spark_cluster import MASTER_OPTS, WORKER_OPTS, master_args, worker_args
from fraudops.topics import load_topic_specs

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
HOME_IN_IMAGE = PurePosixPath("/opt/fraudops")
TOPICS = {"transactions_stream", "fraud_predictions", "dead_letters", "model_updates"}
KAFKA_NODES = ("kafka-1", "kafka-2", "kafka-3")
# run our image but none of our code, and read no secret
SPARK_DAEMONS = ("spark-master", "spark-worker")
INTERNAL_KAFKA_PORT = 19092
DOCKERFILE = REPO / "docker" / "Dockerfile"
# the vendor software's images, built from the same Debian base as ours
VENDOR_TARGETS = {
    "postgres": "postgres",
    "redis": "redis",
    "minio": "minio",
    **dict.fromkeys(KAFKA_NODES, "kafka"),
}
# every container -> its component of fraudops.secrets.COMPONENT_SECRETS, whose file
# (env/components/<component>.env) is all of env/ it gets; None: no secret at all
AIRFLOW_SERVERS = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "flower",
)
SERVICE_COMPONENTS: dict[str, str | None] = {
    "postgres": "postgres",
    "redis": "redis",
    "minio": "minio",
    **dict.fromkeys(KAFKA_NODES),
    "postgres-init": "postgres-init",
    "minio-init": "minio-init",
    "kafka-init": "kafka-init",
    "airflow-init": "airflow-init",
    "mlflow": "mlflow",
    "mlflow-init": "mlflow-init",
    **dict.fromkeys(AIRFLOW_SERVERS, "airflow"),
    "airflow-worker": "airflow-worker",
    **dict.fromkeys(SPARK_DAEMONS),
    "spark-scorer": "scorer",
    "console": "console",
    **{name: name for name in MONITORING_NAMES},
}
# vendor images take their secrets as env_file (their own interface: POSTGRES_*, MINIO_ROOT_*, ...)
ENV_FILE_SERVICES = ("postgres", "redis", "minio")
# what a container may mount from env/ beside its component's file: the console's people (scrypt hashes)
NOT_SECRET_MOUNTS = {"console": ["./env/console-users.json:/opt/fraudops/env/console-users.json:ro"]}
PORT_RE = re.compile(r"^127\.0\.0\.1:\$\{(?P<var>[A-Z0-9_]+):-(?P<default>\d+)\}:(?P<container>\d+)$")


# ------------------------------------------------------------------------------------------------ fixtures
def _without_fraudops_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("FRAUDOPS_", "COMPOSE_", "DOCKER_"))}


@pytest.fixture(scope="module")
def settings() -> Settings:
    """configs/fraudops.yaml as committed, whatever FRAUDOPS_* the shell running the tests exports."""
    with mock.patch.dict(os.environ, _without_fraudops_env(), clear=True):
        return load_settings(REPO)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _lock_versions() -> dict[str, str]:
    versions = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if match:
            versions[match.group(1).lower()] = match.group(2)
    return versions


def _env(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _command(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _published(service: Mapping[str, Any]) -> list[re.Match[str]]:
    matches = []
    for entry in service.get("ports", []):
        match = PORT_RE.match(str(entry))
        assert match, f"port {entry!r} is not 127.0.0.1:${{VAR:-default}}:<container port>"
        matches.append(match)
    return matches


def _stages() -> dict[str, str]:
    """docker/Dockerfile's stages by name: the text from its FROM line to the next."""
    parts = re.split(r"(?m)^(?=FROM )", DOCKERFILE.read_text())
    stages = {}
    for part in parts[1:]:
        name = re.match(r"FROM \S+ AS (\S+)", part)
        assert name, f"every stage is named: {part.splitlines()[0]}"
        stages[name.group(1)] = part
    return stages


def _arg_default(name: str) -> str:
    match = re.search(rf"(?m)^ARG {name}=(\S+)$", DOCKERFILE.read_text())
    assert match, f"docker/Dockerfile has no ARG {name} with a default"
    return match.group(1)


def _image_tag(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


# ---------------------------------------------------------------------------------- secret-literal checker
SECRET_NAME = re.compile(r"(?i)(passw(or)?d|secret|token|fernet|access_key|api_key|credential|jwt)")
# value of a secret-like KEY=VALUE / --flag VALUE / URL password that is not a $variable
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b\w*(passw(or)?d|secret|token|fernet|access_key|api_key|requirepass)\w*"
    r"(\s*[=:]\s*|\s+)(?![\"']?\$)[\"']?[A-Za-z0-9+/_\-.]{4,}"
)
URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:(?!\$)[^@\s/]+@")


def find_literal_secrets(doc: Mapping[str, Any]) -> list[str]:
    """Places of a compose document where a secret is written out instead of read from env/*.env."""
    problems = []
    for name, service in (doc.get("services") or {}).items():
        for key in _env(service):
            if SECRET_NAME.search(key):
                problems.append(f"{name}: environment sets {key} (secrets come from env/*.env)")
        for text in _strings({k: v for k, v in service.items() if k != "environment"}):
            for line in text.splitlines():
                if URL_CREDENTIALS.search(line) or SECRET_ASSIGNMENT.search(line):
                    problems.append(f"{name}: literal secret in {line.strip()!r}")
    return problems


def test_secret_checker_catches_literals() -> None:
    bad = {
        "services": {
            "a": {"environment": {"POSTGRES_PASSWORD": "hunter2"}},
            "b": {"environment": ["AIRFLOW__API_AUTH__JWT_SECRET=abc"]},
            "c": {
                "command": ["mlflow", "server", "--backend-store-uri", "postgresql://mlflow:s3cr3t@pg/mlflow"]
            },
            "d": {"command": "redis-server --requirepass s3cr3tvalue"},
            "e": {"healthcheck": {"test": ["CMD-SHELL", "redis-cli -a x && REDIS_PASSWORD=abcdef ping"]}},
        }
    }
    assert {p.split(":", 1)[0] for p in find_literal_secrets(bad)} == {"a", "b", "c", "d", "e"}
    fine = {
        "services": {
            "r": {
                "command": ["sh", "-c", "requirepass $${REDIS_PASSWORD}"],
                "environment": {"MLFLOW_DB_USER": "mlflow"},
            }
        }
    }
    assert find_literal_secrets(fine) == []


def test_no_secret_in_compose_file(compose: dict[str, Any]) -> None:
    assert find_literal_secrets(compose) == []
    text = COMPOSE_FILE.read_text()
    # the developer's generated secrets, when present, appear in no committed build file
    env_files = sorted((REPO / "env").glob("*.env"))
    build_files = [text, DOCKERFILE.read_text()]
    for env_file in env_files:
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if SECRET_NAME.search(key) and len(value) >= 8:
                assert all(value not in f for f in build_files), (
                    f"{key} of {env_file.name} is in a build file"
                )


def _env_mounts(service: dict[str, Any]) -> list[str]:
    return [str(v) for v in service.get("volumes", []) if str(v).startswith("./env")]


def test_each_container_gets_only_its_own_component_secrets(services: dict[str, dict[str, Any]]) -> None:
    """One file per component (env/components/<component>.env of `make secrets`): vendor images take it as
    env_file, our containers mount that single file read-only; nothing else of env/ reaches a container."""
    assert set(SERVICE_COMPONENTS) == set(services)
    assert {c for c in SERVICE_COMPONENTS.values() if c} == set(COMPONENT_SECRETS)
    for name, component in SERVICE_COMPONENTS.items():
        service = services[name]
        env_files = service.get("env_file") or []
        env_files = [env_files] if isinstance(env_files, str) else env_files
        mounts = [m for m in _env_mounts(service) if m not in NOT_SECRET_MOUNTS.get(name, [])]
        if component is None or not COMPONENT_SECRETS[component]:
            assert env_files == [] and mounts == [], name
        elif name in ENV_FILE_SERVICES:
            assert env_files == [f"./env/components/{component}.env"] and mounts == [], name
        else:
            assert env_files == [], name
            assert mounts == [f"./env/components/{component}.env:{HOME_IN_IMAGE}/env/{component}.env:ro"], (
                name
            )


def test_the_superuser_and_root_keys_reach_only_the_init_steps_and_their_servers() -> None:
    def holders(key: str) -> set[str]:
        return {n for n, c in SERVICE_COMPONENTS.items() if c and key in COMPONENT_SECRETS[c]}

    assert holders("POSTGRES_PASSWORD") == {"postgres", "postgres-init"}
    assert holders("MINIO_ROOT_PASSWORD") == {"minio", "minio-init"}
    assert holders("AIRFLOW_ADMIN_PASSWORD") == {"airflow-init", "airflow-worker", "platform-exporter"}
    # every key of the table is one the examples define
    defined = {
        line.split("=", 1)[0]
        for example in (REPO / "env").glob("*.env.example")
        for line in example.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert set().union(*COMPONENT_SECRETS.values()) <= defined


class _Reads(dict):
    """Secrets that record which keys a function read."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return "x"

    def get(self, key: str, default: Any = None) -> str:  # type: ignore[override]
        self.read.add(key)
        return "x"


def test_no_container_gets_a_key_it_does_not_read(
    services: dict[str, dict[str, Any]], settings: Settings, tmp_path: Path
) -> None:
    """The Airflow servers' and the monitoring containers' components are exactly what their code reads."""
    from fraudops.monitoring.prometheus import ConfigFiles, write_configs
    from fraudops.stack.airflow_env import airflow_process_environment
    from fraudops.stack.monitoring import process_of, write_secret_files

    inside = _settings_in_container(services["airflow-scheduler"])
    airflow = _Reads()
    airflow_environment(inside, airflow)
    airflow_process_environment(inside, airflow)
    assert airflow.read == COMPONENT_SECRETS["airflow"]
    layout = StackLayout(tmp_path / "stack")
    for name in ("postgres-exporter", "redis-exporter", "statsd-exporter"):
        reads = _Reads()
        process_of(name, inside, reads, layout)
        write_secret_files(name, inside, reads, layout)
        assert reads.read == COMPONENT_SECRETS[name], name
    # Prometheus and Alertmanager share one preparation: each reads one key of the two
    reads = _Reads()
    write_configs(settings, reads, ConfigFiles(tmp_path / "monitoring"), "flower")
    assert reads.read == COMPONENT_SECRETS["prometheus"] | COMPONENT_SECRETS["alertmanager"]
    # the MLflow container prepares and runs the native stack's MLflow (`fraudops stack exec mlflow`)
    reads = _Reads()
    mlflow = CONTAINER_SERVICES["mlflow"](
        _settings_in_container(services["mlflow"]), reads, StackLayout(tmp_path / "mlflow")
    )
    mlflow.prepare()
    assert reads.read == COMPONENT_SECRETS["mlflow"]


# --------------------------------------------------------------------------------------- docker-compose
def _project_copy(tmp_path: Path) -> Path:
    """A copy of the project with freshly generated secrets, so the validator finds every env_file."""
    (tmp_path / "env").mkdir()
    for example in (REPO / "env").glob("*.env.example"):
        shutil.copy(example, tmp_path / "env" / example.name)
    ensure_secrets(tmp_path / "env")
    write_component_secrets(tmp_path / "env")
    shutil.copy(COMPOSE_FILE, tmp_path / COMPOSE_FILE.name)
    for entry in REPO.iterdir():
        if entry.name not in {"env", COMPOSE_FILE.name, ".git", ".venv", ".stack", ".env"}:
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


def _docker_compose(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project), **env}
    return subprocess.run(
        [binary, "--project-directory", str(project), "-f", str(project / COMPOSE_FILE.name), *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=120,
    )


needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose 1.29 (Debian package `docker-compose`) is not installed; the project's bootstrap "
    "installs it, so CI runs this check",
)


@needs_compose
def test_docker_compose_config_is_valid(tmp_path: Path) -> None:
    result = _docker_compose(_project_copy(tmp_path), "config", "-q")
    assert result.returncode == 0, result.stderr
    # every variable has a default: compose warns "The X variable is not set" otherwise
    assert "not set" not in result.stderr, result.stderr


def _resolved_host_port(service: Mapping[str, Any]) -> int:
    """The first published host port in `docker-compose config` output (v1 prints short syntax)."""
    entry = service["ports"][0]
    if isinstance(entry, Mapping):
        return int(entry["published"])
    return int(str(entry).split("/")[0].split(":")[-2])


@needs_compose
def test_docker_compose_resolves_ports_and_overrides(tmp_path: Path, settings: Settings) -> None:
    project = _project_copy(tmp_path)
    default = yaml.safe_load(_docker_compose(project, "config").stdout)["services"]
    assert _resolved_host_port(default["postgres"]) == settings.stack.ports.postgres
    assert _resolved_host_port(default["kafka-2"]) == settings.stack.ports.kafka[1]
    moved = _docker_compose(project, "config", FRAUDOPS_STACK__PORTS__POSTGRES="15432", KAFKA_2_PORT="19093")
    assert moved.returncode == 0, moved.stderr
    moved_services = yaml.safe_load(moved.stdout)["services"]
    assert _resolved_host_port(moved_services["postgres"]) == 15432
    assert _resolved_host_port(moved_services["kafka-2"]) == 19093
    # the advertised host listener follows the published port, or host clients would be sent elsewhere
    assert (
        "EXTERNAL://localhost:19093" in moved_services["kafka-2"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )


# ------------------------------------------------------------------------------------------ service set
def test_services_are_the_native_stack_plus_one_shot_init(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == set(SERVICE_NAMES) | set(MONITORING_NAMES) | ONE_SHOT
    one_shot = {name for name, s in services.items() if str(s.get("restart")) == "no"}
    assert one_shot == ONE_SHOT
    for name in (*SERVICE_NAMES, *MONITORING_NAMES):
        assert services[name].get("restart") == "unless-stopped", name


def test_profiles(services: dict[str, dict[str, Any]]) -> None:
    assert services["spark-scorer"]["profiles"] == ["scoring"]
    assert [n for n, s in services.items() if s.get("profiles")] == ["spark-scorer"]


def test_airflow_services_share_the_anchor(compose: dict[str, Any], services: dict[str, Any]) -> None:
    common = compose["x-airflow-common"]
    airflow = [n for n in SERVICE_NAMES if n.startswith("airflow-")] + ["flower", *sorted(ONE_SHOT)]
    for name in airflow:
        for key in ("image", "build", "user", "environment"):
            assert services[name][key] == common[key], f"{name}.{key} differs from x-airflow-common"


# ------------------------------------------------------------------------------------------------ ports
def _expected_ports(settings: Settings) -> dict[str, list[tuple[str, int]]]:
    p = settings.stack.ports
    expected = {
        "postgres": [("FRAUDOPS_STACK__PORTS__POSTGRES", p.postgres)],
        "redis": [("FRAUDOPS_STACK__PORTS__REDIS", p.redis)],
        "minio": [
            ("FRAUDOPS_STACK__PORTS__MINIO_API", p.minio_api),
            ("FRAUDOPS_STACK__PORTS__MINIO_CONSOLE", p.minio_console),
        ],
        "mlflow": [("FRAUDOPS_STACK__PORTS__MLFLOW", p.mlflow)],
        "airflow-apiserver": [("FRAUDOPS_STACK__PORTS__AIRFLOW", p.airflow)],
        "flower": [("FRAUDOPS_STACK__PORTS__FLOWER", p.flower)],
        "spark-scorer": [("FRAUDOPS_STACK__PORTS__SPARK_UI", p.spark_ui)],
        "spark-master": [
            ("FRAUDOPS_STACK__PORTS__SPARK_MASTER", p.spark_master),
            ("FRAUDOPS_STACK__PORTS__SPARK_MASTER_UI", p.spark_master_ui),
        ],
        "console": [("FRAUDOPS_STACK__PORTS__CONSOLE", p.console)],
        "prometheus": [("FRAUDOPS_STACK__PORTS__PROMETHEUS", p.prometheus)],
        "alertmanager": [("FRAUDOPS_STACK__PORTS__ALERTMANAGER", p.alertmanager)],
        "postgres-exporter": [("FRAUDOPS_STACK__PORTS__POSTGRES_EXPORTER", p.postgres_exporter)],
        "redis-exporter": [("FRAUDOPS_STACK__PORTS__REDIS_EXPORTER", p.redis_exporter)],
        "statsd-exporter": [("FRAUDOPS_STACK__PORTS__STATSD_EXPORTER", p.statsd_exporter)],
        "platform-exporter": [("FRAUDOPS_STACK__PORTS__PLATFORM_EXPORTER", p.platform_exporter)],
        # spark-worker publishes nothing: `--scale spark-worker=N` would fight over a fixed host port
    }
    assert len(p.kafka) == len(KAFKA_NODES)
    for i, port in enumerate(p.kafka, start=1):
        expected[f"kafka-{i}"] = [(f"KAFKA_{i}_PORT", port)]
    return expected


def test_host_ports_default_to_configs(services: dict[str, dict[str, Any]], settings: Settings) -> None:
    expected = _expected_ports(settings)
    published = {name: _published(s) for name, s in services.items() if s.get("ports")}
    assert set(published) == set(expected)
    for name, matches in published.items():
        got = [(m["var"], int(m["default"])) for m in matches]
        assert got == expected[name], name
        # inside the network the service listens where configs/fraudops.yaml says (our containers mount it)
        assert [int(m["container"]) for m in matches] == [port for _, port in expected[name]], name


def test_ports_variables_are_settings_overrides(settings: Settings) -> None:
    """FRAUDOPS_STACK__PORTS__<KEY> moves a port for compose and for the `fraudops` clients alike."""
    overrides = {
        var: str(port + 10000)
        for ports in _expected_ports(settings).values()
        for var, port in ports
        if var.startswith("FRAUDOPS_")
    }
    with mock.patch.dict(os.environ, {**_without_fraudops_env(), **overrides}, clear=True):
        moved = load_settings(REPO).stack.ports
    assert moved.postgres == settings.stack.ports.postgres + 10000
    assert moved.minio_console == settings.stack.ports.minio_console + 10000
    assert moved.spark_ui == settings.stack.ports.spark_ui + 10000
    assert moved.spark_master_ui == settings.stack.ports.spark_master_ui + 10000


# ------------------------------------------------------------------------------------------------ images
def test_image_tags_are_pinned(services: dict[str, dict[str, Any]], settings: Settings) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image (a built service needs a tag too)"
        tag = _image_tag(image)
        assert tag and tag != "latest" and "${" not in image, f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d", tag), f"{name}: {image!r} is a floating tag"


def test_every_image_builds_from_the_one_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    stages = _stages()
    for name, service in services.items():
        build = service.get("build")
        assert build, f"{name} pulls {service.get('image')}: every image is built from docker/Dockerfile"
        assert build["context"] == "." and build["dockerfile"] == "docker/Dockerfile", name
        assert build["target"] in stages, f"{name}: no stage {build['target']}"
        assert service["image"].startswith(f"fraudops-{build['target']}:"), name
    for name, target in VENDOR_TARGETS.items():
        assert services[name]["build"]["target"] == target


def test_one_pinned_debian_base_and_the_native_versions(compose: dict[str, Any], settings: Settings) -> None:
    froms = re.findall(r"(?m)^FROM (\S+) AS", DOCKERFILE.read_text())
    stages = set(_stages())
    # one outside base, every other stage builds on a stage of the file
    assert froms[0] == "${DEBIAN_IMAGE}" and set(froms[1:]) <= stages
    assert _arg_default("DEBIAN_IMAGE") == settings.docker.base_image
    assert re.fullmatch(r"debian:\d+\.\d+-slim", settings.docker.base_image)
    assert _arg_default("GO_VERSION") == settings.docker.go_version
    assert _arg_default("MINIO_VERSION") == settings.stack.versions.minio
    uv = re.search(r"(?m)^UV_VERSION=(\S+)$", (REPO / "scripts" / "bootstrap.sh").read_text())
    assert uv and _arg_default("UV_VERSION") == uv.group(1)
    args = compose["x-build-args"]
    assert args == {
        "DEBIAN_IMAGE": f"${{FRAUDOPS_DOCKER__BASE_IMAGE:-{settings.docker.base_image}}}",
        "GO_VERSION": f"${{FRAUDOPS_DOCKER__GO_VERSION:-{settings.docker.go_version}}}",
        "MINIO_VERSION": f"${{FRAUDOPS_STACK__VERSIONS__MINIO:-{settings.stack.versions.minio}}}",
        "STATSD_EXPORTER_VERSION": (
            f"${{FRAUDOPS_STACK__VERSIONS__STATSD_EXPORTER:-{settings.stack.versions.statsd_exporter}}}"
        ),
    }
    assert _arg_default("STATSD_EXPORTER_VERSION") == settings.stack.versions.statsd_exporter
    # the same software as the native stack: Debian's servers, the poms' jars, the lock's Python packages
    stages_text = _stages()
    assert "install -y --no-install-recommends postgresql" in stages_text["postgres"]
    assert "install -y --no-install-recommends redis-server" in stages_text["redis"]
    assert 'go install -trimpath "github.com/minio/minio@${MINIO_VERSION}"' in stages_text["minio-build"]
    assert "COPY kafka/pom.xml" in stages_text["jars"] and "COPY spark-jobs/pom.xml" in stages_text["jars"]
    assert "uv pip sync --python /opt/venv/bin/python /tmp/requirements.lock" in stages_text["python"]


def test_extra_ca_certificates_reach_every_image() -> None:
    base = _stages()["debian"]
    assert "COPY docker/ca/ /usr/local/share/ca-certificates/" in base and "update-ca-certificates" in base
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT"):
        assert f"{variable}=/etc/ssl/certs/ca-certificates.crt" in base
    # Java builds its trust store from the system's when it is installed, after the CA is in place
    assert "openjdk-17-jre-headless" not in base
    assert "docker/ca/*.crt" in (REPO / ".gitignore").read_text()


def test_dockerfile_copy_sources_exist() -> None:
    for line in re.findall(r"(?im)^COPY\s+(?!--from)(.+)$", DOCKERFILE.read_text()):
        sources = [s for s in line.split() if not s.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source} is not in the repository"
            if source.endswith(".sh"):
                assert os.access(REPO / source, os.X_OK), f"{source} is not executable"


def test_build_contexts_keep_secrets_and_stack_out() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".stack", "env/*.env"} <= ignored


# ------------------------------------------------------------------------------------ health and ordering
def test_every_server_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name in (*SERVICE_NAMES, *MONITORING_NAMES):
        check = services[name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        # keys docker-compose 1.29 knows (it rejects start_interval)
        assert set(check) <= {"test", "interval", "timeout", "retries", "start_period"}, name
    for name in ONE_SHOT:
        assert "healthcheck" not in services[name], name


def test_depends_on_uses_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions, not a list"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert not services[target].get("profiles") or service.get("profiles"), f"{name} -> {target}"
            wanted = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            assert rule == {"condition": wanted}, f"{name} -> {target}: {rule}"


def _requires(services: dict[str, dict[str, Any]], name: str) -> set[str]:
    """Every service started before `name`, transitively."""
    seen: set[str] = set()
    todo = list(services[name].get("depends_on", {}))
    while todo:
        target = todo.pop()
        if target not in seen:
            seen.add(target)
            todo.extend(services[target].get("depends_on", {}))
    return seen


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    assert _requires(services, "kafka-init") == set(KAFKA_NODES)
    assert {"postgres-init", "minio-init"} <= _requires(services, "mlflow")
    assert _requires(services, "airflow-init") == {"postgres", "postgres-init"}
    for name in SERVICE_NAMES:
        if name.startswith("airflow-") or name == "flower":
            assert {"airflow-init", "redis", "postgres"} <= _requires(services, name), name
    assert {"airflow-apiserver", "mlflow", "kafka-init", "minio-init"} <= _requires(
        services, "airflow-worker"
    )
    assert {"kafka-init", "mlflow", "postgres-init", *SPARK_DAEMONS} <= _requires(services, "spark-scorer")
    assert _requires(services, "spark-worker") == {"spark-master"}


# ----------------------------------------------------------------------------------------- our commands
def _cli_command_exists(args: list[str]) -> bool:
    group: Any = cli_main
    for word in args:
        if not hasattr(group, "commands"):
            return True
        if word not in group.commands:
            return False
        group = group.commands[word]
    return not hasattr(group, "commands")


def test_init_services_call_existing_cli_commands(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "postgres-init": ["fraudops", "stack", "init-db"],
        "minio-init": ["fraudops", "stack", "init-buckets"],
        "kafka-init": ["fraudops", "kafka", "create-topics"],
        "airflow-init": ["fraudops", "stack", "airflow-init"],
    }
    for name, command in expected.items():
        assert _command(services[name]) == command, name
        if command[0] == "fraudops":
            assert _cli_command_exists(command[1:]), f"`{' '.join(command)}` is not a fraudops command"
    assert _cli_command_exists(["stack", "airflow-env"])
    entrypoint = (REPO / "docker" / "airflow" / "entrypoint.sh").read_text()
    assert '"$(fraudops stack airflow-env)"' in entrypoint and 'exec airflow "$@"' in entrypoint


def test_airflow_commands(services: dict[str, dict[str, Any]]) -> None:
    assert _command(services["airflow-apiserver"]) == ["api-server"]
    assert _command(services["airflow-scheduler"]) == ["scheduler"]
    assert _command(services["airflow-dag-processor"]) == ["dag-processor"]
    for name in ("airflow-triggerer", "airflow-worker"):
        assert _command(services[name]) == list(AIRFLOW_COMMANDS[name])
    assert _command(services["flower"]) == ["celery", "flower"]


def _settings_in_container(service: Mapping[str, Any]) -> Settings:
    """The settings our code sees inside a container: configs/fraudops.yaml plus the service's FRAUDOPS_*."""
    env = {k: v for k, v in _env(service).items() if k.startswith("FRAUDOPS_") and k != "FRAUDOPS_HOME"}
    raw = yaml.safe_load((REPO / CONFIG_FILE).read_text())
    with mock.patch.dict(os.environ, {**_without_fraudops_env(), **env}, clear=True):
        return Settings(project_root=Path(_env(service)["FRAUDOPS_HOME"]), **raw)


def test_containers_reach_services_by_name(services: dict[str, dict[str, Any]], settings: Settings) -> None:
    for name in ("airflow-worker", "kafka-init", "spark-scorer", "mlflow", "mlflow-init"):
        inside = _settings_in_container(services[name])
        assert inside.project_root == Path(HOME_IN_IMAGE)
        assert inside.stack.host == "0.0.0.0"
        for host in ("postgres", "redis", "minio", "mlflow"):
            assert inside.host_of(host) == host and host in services
        assert inside.host_of("airflow") == "airflow-apiserver"
        brokers = inside.kafka_bootstrap_servers.split(",")
        assert brokers == [f"{node}:{INTERNAL_KAFKA_PORT}" for node in KAFKA_NODES]
    inside = _settings_in_container(services["airflow-worker"])
    assert inside.mlflow_tracking_uri == f"http://mlflow:{settings.stack.ports.mlflow}"
    assert inside.s3_endpoint_url == _settings_in_container(services["mlflow"]).s3_endpoint_url


def test_airflow_configuration_fits_the_containers(
    services: dict[str, dict[str, Any]], settings: Settings
) -> None:
    inside = _settings_in_container(services["airflow-apiserver"])
    fake = {
        k: "x"
        for k in (
            "REDIS_PASSWORD",
            "AIRFLOW_DB_PASSWORD",
            "AIRFLOW__CORE__FERNET_KEY",
            "FLOWER_PASSWORD",
            "AIRFLOW__API__SECRET_KEY",
            "AIRFLOW__API_AUTH__JWT_SECRET",
        )
    }
    env = airflow_environment(inside, fake)
    api_port = settings.stack.ports.airflow
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-apiserver:{api_port}/execution/"
    assert env["AIRFLOW__API__HOST"] == "0.0.0.0" and env["AIRFLOW__CELERY__FLOWER_HOST"] == "0.0.0.0"
    assert (
        "@redis:" in env["AIRFLOW__CELERY__BROKER_URL"]
        and "@postgres:" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(HOME_IN_IMAGE / "dags")
    # AIRFLOW_HOME (logs, password file) lives on the volume every Airflow container shares
    home = str(airflow_home(inside))
    for name in [n for n in SERVICE_NAMES if n.startswith("airflow-")] + ["flower"]:
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        assert mounts.get(home) == "airflow-data", f"{name} does not mount airflow-data at {home}"
    # the healthchecks reach the ports the servers bind
    assert f"localhost:{api_port}/" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert f"localhost:{settings.stack.ports.flower}/" in " ".join(services["flower"]["healthcheck"]["test"])
    scheduler_health = settings.stack.ports.airflow_scheduler_health
    assert f"localhost:{scheduler_health}/" in " ".join(services["airflow-scheduler"]["healthcheck"]["test"])


# ------------------------------------------------------------------------------------------------- Kafka
def _kafka_properties(service: Mapping[str, Any]) -> dict[str, str]:
    """The apache/kafka image's env-to-property rule: KAFKA_A_B -> a.b, __ -> _, ___ -> -."""
    props = {}
    for key, value in _env(service).items():
        if key.startswith("KAFKA_") and key not in ("KAFKA_HEAP_OPTS", "KAFKA_OPTS"):
            name = key.removeprefix("KAFKA_").lower().replace("___", "-").replace("__", "\0")
            props[name.replace("_", ".").replace("\0", "_")] = value
    return props


def test_kafka_image_reads_the_variables_by_the_rule_and_logs_as_native(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    service = services["kafka-1"]
    env = {**_env(service), "PATH": os.environ["PATH"], "FRAUDOPS_KAFKA_CONFIG_DIR": str(tmp_path)}
    printed = subprocess.run(
        ["sh", str(REPO / "docker" / "kafka" / "entrypoint.sh"), "print-config"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    props = dict(line.split("=", 1) for line in (tmp_path / "server.properties").read_text().splitlines())
    assert props == _kafka_properties(service)
    assert (tmp_path / "log4j2.properties").read_text() == LOG4J2
    assert printed == (tmp_path / "server.properties").read_text() + LOG4J2


def test_kafka_durability_matches_native(services: dict[str, dict[str, Any]], settings: Settings) -> None:
    controller = settings.stack.ports.kafka_controller
    voters = ",".join(f"{i}@kafka-{i}:{port}" for i, port in enumerate(controller, start=1))
    cluster_ids = set()
    for i, node in enumerate(KAFKA_NODES, start=1):
        service = services[node]
        props = _kafka_properties(service)
        for key, value in DURABILITY.items():
            assert props.get(key) == value, f"{node}: {key}={props.get(key)}, native stack has {value}"
        assert props["node.id"] == str(i)
        assert props["process.roles"] == "broker,controller"
        assert props["controller.quorum.voters"] == voters
        assert props["listeners"] == (
            f"INTERNAL://:{INTERNAL_KAFKA_PORT},EXTERNAL://:{settings.stack.ports.kafka[i - 1]},"
            f"CONTROLLER://:{controller[i - 1]}"
        )
        (match,) = _published(service)
        assert props["advertised.listeners"] == (
            f"INTERNAL://{node}:{INTERNAL_KAFKA_PORT},EXTERNAL://localhost:${{{match['var']}:-{match['default']}}}"
        )
        assert f"-Xmx{settings.stack.memory.kafka_heap}" in _env(service)["KAFKA_HEAP_OPTS"].split()
        assert service.get("hostname") == node
        assert any(v.endswith(":/var/lib/kafka/data") for v in service["volumes"])
        assert props["log.dirs"] == "/var/lib/kafka/data"
        cluster_ids.add(_env(service)["CLUSTER_ID"])
    assert len(cluster_ids) == 1


def test_kafka_init_creates_topics_from_the_spec(
    services: dict[str, dict[str, Any]], settings: Settings
) -> None:
    spec_in_image = HOME_IN_IMAGE / settings.kafka.topics_file.as_posix()
    assert (
        f"./{settings.kafka.topics_file.as_posix()}:{spec_in_image}:ro" in services["kafka-init"]["volumes"]
    )
    specs = load_topic_specs(settings.path(settings.kafka.topics_file))
    assert {s.name for s in specs} == TOPICS
    for spec in specs:
        assert spec.replication_factor == 3 and spec.config.get("min.insync.replicas") == "2", spec.name


# --------------------------------------------------------------------------------------- MLflow, MinIO
def test_mlflow_server(services: dict[str, dict[str, Any]], settings: Settings, tmp_path: Path) -> None:
    """The container runs the native stack's MLflow: the same process, with the containers' host names."""
    mlflow = services["mlflow"]
    assert "command" not in mlflow
    entrypoint = (REPO / "mlflow" / "entrypoint.sh").read_text()
    assert "exec fraudops stack exec mlflow" in entrypoint
    inside = _settings_in_container(mlflow)
    secrets = {key: f"secret-{key.lower()}" for key in COMPONENT_SECRETS["mlflow"]}
    spec = CONTAINER_SERVICES["mlflow"](inside, secrets, StackLayout(tmp_path / "stack")).spec
    command, env = spec.argv, spec.env
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == str(settings.stack.ports.mlflow)
    assert command[command.index("--app-name") + 1] == "fraudops-basic-auth"
    assert "--serve-artifacts" in command and "--default-artifact-root" not in command
    assert command[command.index("--workers") + 1] == str(settings.mlflow.workers)
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    # other containers call it by its name; the host through the published port, whatever it is
    assert {"mlflow", "mlflow:*", "localhost:*", "127.0.0.1:*"} <= set(allowed)
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == f"s3://{settings.minio.buckets.mlflow_artifacts}"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == f"http://minio:{settings.stack.ports.minio_api}"
    assert env["MLFLOW_BACKEND_STORE_URI"].endswith(
        f"@postgres:{settings.stack.ports.postgres}/{settings.postgres.databases['mlflow']}"
    )
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    # no secret on its command line or in its environment: files only
    exposed = " ".join([*command, *env.values()])
    assert not [key for key, value in secrets.items() if value in exposed]


def test_no_package_shadowing_folders() -> None:
    # mlflow/ and kafka/ sit at the project root: an __init__.py would shadow the real packages
    assert not (REPO / "mlflow" / "__init__.py").exists()
    assert not (REPO / "kafka" / "__init__.py").exists()


# ----------------------------------------------------------------------------------- versions everywhere
def _pom_property(pom: Path, name: str) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find(f"m:properties/m:{name}", ns)
    assert node is not None and node.text, f"{pom} has no {name}"
    return node.text.strip()


def test_versions_agree(settings: Settings) -> None:
    versions = settings.stack.versions
    assert _pom_property(REPO / "kafka" / "pom.xml", "kafka.version") == versions.kafka
    assert _pom_property(REPO / "spark-jobs" / "pom.xml", "spark.version") == versions.spark
    assert _lock_versions()["pyspark"] == versions.spark


def test_hadoop_aws_matches_the_hadoop_client_pyspark_ships() -> None:
    import pyspark

    shipped = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    assert shipped, "pyspark ships no hadoop-client-api jar"
    version = shipped[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    assert _pom_property(REPO / "spark-jobs" / "pom.xml", "hadoop.version") == version


def test_compose_scorer_checkpoints_on_object_storage(
    settings: Settings, services: dict[str, dict[str, Any]]
) -> None:
    location = services["spark-scorer"]["environment"]["FRAUDOPS_SCORER__CHECKPOINT_DIR"]
    assert location.startswith(f"s3a://{settings.minio.buckets.lake}/")
    assert "minio-init" in _requires(services, "spark-scorer")  # the bucket exists before the first batch


def test_spark_image() -> None:
    text = _stages()["spark"]
    assert text.startswith("FROM python AS spark")
    assert "openjdk-17-jre-headless" in text
    # the image carries S3A: its checkpoints live in MinIO
    assert "COPY --from=jars /jars/spark/" in text
    assert re.search(r"mvn .*-P s3a", _stages()["jars"])


def test_airflow_image() -> None:
    text = _stages()["python"] + _stages()["airflow"]
    assert "uv pip install --python /opt/venv/bin/python --no-deps /tmp/fraudops" in text
    for source in ("configs", "kafka/topics.yaml", "dags", "plugins"):
        assert re.search(rf"(?m)^COPY {re.escape(source)} ", text), f"the Airflow image lacks {source}"
    assert re.search(r'(?m)^ENTRYPOINT \["/entrypoint"\]', text)
    entrypoint = REPO / "docker" / "airflow" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)


def test_named_volumes(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == declared
    for name in ("postgres", "redis", "minio", *KAFKA_NODES):
        assert any(not str(v).startswith((".", "/")) for v in services[name]["volumes"]), name


# ------------------------------------------------------------------------------------- Spark cluster
def test_spark_cluster_matches_native(services: dict[str, dict[str, Any]], settings: Settings) -> None:
    """The master and worker run the classes, ports and resources of the native stack's, in the scorer's
    image; the scorer finds the master by name and gives executors its own name to call back on."""
    scorer = services["spark-scorer"]
    inside = _settings_in_container(scorer)
    ports = settings.stack.ports
    for name in SPARK_DAEMONS:
        for key in ("image", "build", "user"):
            assert services[name][key] == scorer[key], f"{name}.{key} differs from spark-scorer"
    master_url = f"spark://spark-master:{ports.spark_master}"
    assert services["spark-master"]["hostname"] == "spark-master"
    assert _command(services["spark-master"]) == ["spark-class", *master_args(settings, "spark-master")]
    work_dir = StackLayout(inside.data_dir).data_of("spark-worker")
    assert _command(services["spark-worker"]) == [
        "spark-class",
        *worker_args(settings, master_url, str(work_dir)),
    ]
    assert "ports" not in services["spark-worker"] and "hostname" not in services["spark-worker"]
    spark_home = re.search(r"SPARK_HOME=(\S+)", _stages()["spark"])
    assert spark_home
    for name in SPARK_DAEMONS:
        env = _env(services[name])
        assert env["SPARK_HOME"] == spark_home.group(1)
        assert env["SPARK_DAEMON_MEMORY"] == settings.spark.daemon_memory
        assert env["SPARK_MASTER_OPTS"] == MASTER_OPTS and env["SPARK_WORKER_OPTS"] == WORKER_OPTS
    checks = {n: " ".join(services[n]["healthcheck"]["test"]) for n in SPARK_DAEMONS}
    assert f"localhost:{ports.spark_master_ui}/json/" in checks["spark-master"]
    assert f"localhost:{ports.spark_worker_ui}/json/" in checks["spark-worker"]

    assert inside.spark_master_url == master_url
    assert inside.spark_driver_host == scorer["hostname"] == "spark-scorer"
    # the image carries the connector on pyspark's class path: 700 MB of jars are not shipped per executor
    assert inside.spark_jars_dir is None


# ------------------------------------------------------------------------------------------- monitoring
def test_monitoring_containers_run_the_native_processes(
    services: dict[str, dict[str, Any]], settings: Settings
) -> None:
    """One monitoring image; each container is `fraudops monitor exec <its name>`, the native stack's
    process of that name, and its healthcheck asks the port the process listens on."""
    stage = _stages()["monitoring"]
    assert stage.startswith("FROM python AS monitoring")
    assert re.search(r'(?m)^ENTRYPOINT \["fraudops", "monitor", "exec"\]', stage)
    assert _cli_command_exists(["monitor", "exec"]) and _cli_command_exists(["monitor", "exporter"])
    # Debian's packages of the native stack, at the pinned versions (the build runs check_installed)
    for package, _, _ in PACKAGES.values():
        assert package in stage.split(), package
    assert "check_installed(load_settings())" in stage
    # statsd_exporter from its Go module where the native stack keeps it (<data_dir>/bin)
    build = _stages()["statsd-exporter-build"]
    assert '"github.com/prometheus/statsd_exporter@${STATSD_EXPORTER_VERSION}"' in build
    assert "COPY --from=statsd-exporter-build /out/statsd/statsd_exporter .stack/bin/statsd_exporter" in stage
    ports = settings.stack.ports
    listens = {
        "prometheus": (ports.prometheus, "/-/ready"),
        "alertmanager": (ports.alertmanager, "/-/ready"),
        "postgres-exporter": (ports.postgres_exporter, "/metrics"),
        "redis-exporter": (ports.redis_exporter, "/metrics"),
        "statsd-exporter": (ports.statsd_exporter, "/metrics"),
        "platform-exporter": (ports.platform_exporter, "/metrics"),
    }
    assert set(listens) == set(MONITORING_NAMES)
    for name, (port, path) in listens.items():
        service = services[name]
        assert service["build"]["target"] == "monitoring", name
        assert _command(service) == [name], name
        assert f"http://localhost:{port}{path}" in service["healthcheck"]["test"], name
        assert _settings_in_container(service).stack.host == "0.0.0.0", name
        assert f"./configs:{HOME_IN_IMAGE}/configs:ro" in service["volumes"], name


def test_prometheus_scrapes_the_containers_by_name(
    services: dict[str, dict[str, Any]], settings: Settings, tmp_path: Path
) -> None:
    """In compose every scrape target is a container's name on the port it listens on; natively each is
    stack.host."""
    from fraudops.monitoring.prometheus import ConfigFiles, prometheus_config, scrape_jobs

    inside = _settings_in_container(services["prometheus"])
    p = settings.stack.ports
    expected = {
        "prometheus": [f"prometheus:{p.prometheus}"],
        "alertmanager": [f"alertmanager:{p.alertmanager}"],
        "postgres": [f"postgres-exporter:{p.postgres_exporter}"],
        "redis": [f"redis-exporter:{p.redis_exporter}"],
        "minio": [f"minio:{p.minio_api}"],
        "flower": [f"flower:{p.flower}"],
        "mlflow": [f"mlflow:{p.mlflow}"],
        "kafka": [f"{node}:{port}" for node, port in zip(KAFKA_NODES, p.kafka_jmx, strict=True)],
        "airflow": [f"statsd-exporter:{p.statsd_exporter}"],
        "platform": [f"platform-exporter:{p.platform_exporter}"],
        "scorer": [f"spark-scorer:{p.scorer_metrics}"],
        # no producer container: `fraudops produce` runs on the host (an optional job)
        "producer": [f"0.0.0.0:{p.producer_metrics}"],
    }
    files = ConfigFiles(tmp_path)
    jobs = {job.name: job.targets for job in scrape_jobs(inside, files, "flower")}
    assert jobs == expected
    for job in scrape_jobs(inside, files, "flower"):
        for target in job.targets:
            host = target.rsplit(":", 1)[0]
            assert host in services or job.optional, (job.name, target)
    config = prometheus_config(inside, files, "flower")
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        f"alertmanager:{p.alertmanager}"
    ]
    # natively every target is stack.host
    native = scrape_jobs(settings, files, "flower")
    assert {t.rsplit(":", 1)[0] for job in native for t in job.targets} == {settings.stack.host}
    # Airflow's StatsD goes to the statsd-exporter container, which listens on stack.ports.statsd
    from collections import defaultdict

    secrets: defaultdict[str, str] = defaultdict(lambda: "x")
    airflow = airflow_environment(_settings_in_container(services["airflow-scheduler"]), secrets)
    assert airflow["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
    assert airflow["AIRFLOW__METRICS__STATSD_PORT"] == str(p.statsd)
    assert "statsd-exporter" in _requires(services, "airflow-scheduler")


def test_kafka_jmx_agent_as_native(services: dict[str, dict[str, Any]], settings: Settings) -> None:
    """The brokers load the JMX exporter agent of kafka/jmx-exporter.pom.xml with the native rules file, on
    stack.ports.kafka_jmx."""
    assert "COPY kafka/jmx-exporter.pom.xml" in _stages()["jars"]
    kafka = _stages()["kafka"]
    assert "COPY configs/prometheus/kafka-jmx.yml /opt/kafka/jmx/kafka-jmx.yml" in kafka
    assert "COPY --from=jars /jars/jmx/jmx_prometheus_javaagent.jar /opt/kafka/jmx/" in kafka
    for i, node in enumerate(KAFKA_NODES):
        opts = _env(services[node])["KAFKA_OPTS"]
        port = settings.stack.ports.kafka_jmx[i]
        assert opts == (
            f"-javaagent:/opt/kafka/jmx/jmx_prometheus_javaagent.jar={port}:/opt/kafka/jmx/kafka-jmx.yml"
        ), node
    entrypoint = (REPO / "docker" / "kafka" / "entrypoint.sh").read_text()
    assert 'java_cmd exec ${KAFKA_OPTS:-} kafka.Kafka "$config"' in entrypoint


def test_minio_and_mlflow_export_metrics_as_native(
    services: dict[str, dict[str, Any]], settings: Settings, tmp_path: Path
) -> None:
    from collections import defaultdict

    from fraudops.stack.services import build_services

    secrets: defaultdict[str, str] = defaultdict(lambda: "x")
    native = {name: d.spec for name, d in build_services(settings, secrets, StackLayout(tmp_path)).items()}
    assert (
        _env(services["minio"])["MINIO_PROMETHEUS_AUTH_TYPE"]
        == native["minio"].env["MINIO_PROMETHEUS_AUTH_TYPE"]
    )
    # the MLflow container runs the native spec (`fraudops stack exec mlflow`), its samples in the image
    inside = _settings_in_container(services["mlflow"])
    command = CONTAINER_SERVICES["mlflow"](inside, secrets, StackLayout(inside.data_dir)).spec.argv
    assert "--expose-prometheus" in command and "--expose-prometheus" in native["mlflow"].argv
    assert command[command.index("--expose-prometheus") + 1].startswith(str(HOME_IN_IMAGE / ".stack"))
