"""The pieces of `fraudops compose` that need no Docker engine: CA staging, the base image's release, the
environment handed to compose, and reading container health."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from fraudops.config.settings import load_settings
from fraudops.containers.base_image import BaseImageError, release_of, sources_list
from fraudops.containers.ca import CaBundleError, split_pem_bundle, stage_ca_bundle
from fraudops.containers.compose import ContainerState, compose_environment, parse_inspect

REPO = Path(__file__).resolve().parents[2]
CERT = "-----BEGIN CERTIFICATE-----\nMIIB{n}\nAAAA\n-----END CERTIFICATE-----"


def test_a_bundle_is_split_into_its_certificates_in_order(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(f"# corporate roots\n{CERT.format(n=1)}\n\n{CERT.format(n=2)}\r\n{CERT.format(n=3)}\n")
    assert [c.splitlines()[1] for c in split_pem_bundle(bundle.read_text())] == ["MIIB1", "MIIB2", "MIIB3"]

    folder = tmp_path / "ca"
    folder.mkdir()
    (folder / "extra-009.crt").write_text("stale")
    (folder / "README.md").write_text("kept")
    assert stage_ca_bundle(bundle, folder) == 3
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "extra-001.crt",
        "extra-002.crt",
        "extra-003.crt",
    ]
    assert (folder / "extra-002.crt").read_text() == CERT.format(n=2) + "\n"


def test_no_bundle_unstages_and_a_bad_bundle_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    folder.mkdir()
    (folder / "extra-001.crt").write_text(CERT.format(n=1))
    assert stage_ca_bundle(None, folder) == 0
    assert list(folder.glob("*.crt")) == []
    with pytest.raises(CaBundleError, match="not a file"):
        stage_ca_bundle(tmp_path / "missing.pem", folder)
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here")
    with pytest.raises(CaBundleError, match="no PEM certificate"):
        stage_ca_bundle(empty, folder)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("debian:12.15-slim", ("bookworm", "12.15")),
        ("debian:bookworm-slim", ("bookworm", None)),
        ("debian:13", ("trixie", None)),
        ("docker.io/library/debian:12.9", ("bookworm", "12.9")),
    ],
)
def test_release_of_a_debian_tag(image: str, expected: tuple[str, str | None]) -> None:
    assert release_of(image) == expected


@pytest.mark.parametrize("image", ["ubuntu:24.04", "debian", "debian:99-slim", "debian:sid-x"])
def test_release_of_refuses_what_debootstrap_cannot_build(image: str) -> None:
    with pytest.raises(BaseImageError):
        release_of(image)


def test_sources_include_updates_and_security() -> None:
    lines = sources_list("bookworm").splitlines()
    assert [line.split()[2] for line in lines] == ["bookworm", "bookworm-updates", "bookworm-security"]


def test_compose_environment_carries_ports_and_pins(tmp_path: Path) -> None:
    settings = load_settings(REPO)
    env = compose_environment(settings, base={"PATH": "/usr/bin"})
    assert env["PATH"] == "/usr/bin"
    assert env["COMPOSE_PROJECT_NAME"] == settings.docker.project
    assert env["FRAUDOPS_DOCKER__BASE_IMAGE"] == settings.docker.base_image
    assert env["FRAUDOPS_STACK__VERSIONS__MINIO"] == settings.stack.versions.minio
    assert [env[f"KAFKA_{n}_PORT"] for n in (1, 2, 3)] == [str(p) for p in settings.stack.ports.kafka]
    # every variable the compose file reads is set from the settings, so no default of the file applies
    text = json.dumps(yaml.safe_load((REPO / "docker-compose.yaml").read_text()))  # without comments
    read = set(re.findall(r"\$\{([A-Z0-9_]+):-", text)) - {"FRAUDOPS_UID"}
    assert read <= set(env), sorted(read - set(env))


def _doc(service: str, status: str, exit_code: int = 0, health: str | None = None) -> dict:
    state = {"Status": status, "ExitCode": exit_code}
    if health:
        state["Health"] = {"Status": health}
    return {
        "Name": f"/p-{service}-1",
        "State": state,
        "Config": {"Labels": {"com.docker.compose.service": service}},
    }


def test_container_readiness() -> None:
    states = {
        s.service: s
        for s in parse_inspect(
            [
                _doc("postgres", "running", health="healthy"),
                _doc("kafka-1", "running", health="starting"),
                _doc("redis", "running"),
                _doc("postgres-init", "exited", 0),
                _doc("kafka-init", "exited", 1),
                _doc("mlflow", "running", health="unhealthy"),
                _doc("flower", "exited", 137),
                _doc("minio-init", "running"),
            ]
        )
    }
    assert {name for name, s in states.items() if s.ready} == {"postgres", "redis", "postgres-init"}
    assert {name for name, s in states.items() if s.failed} == {"kafka-init", "mlflow", "flower"}
    assert states["kafka-init"].describe() == "exited 1"
    assert states["kafka-1"].describe() == "running (starting)"
    assert ContainerState("x", "running", None, 0).describe() == "running"


def test_stop_engine_stops_only_what_it_started_and_reaps_it(tmp_path: Path) -> None:
    import subprocess
    import time

    from fraudops.containers.engine import stop_engine

    assert stop_engine(tmp_path) is False  # nothing was started here
    # a child process in the role of the dockerd ensure_engine starts: SIGTERM ends it, and the zombie it
    # leaves behind must not count as running (waiting out the timeout for it cost a minute per CI run)
    child = subprocess.Popen(["sleep", "30"])
    (tmp_path / "started-here").write_text(f"{child.pid}\n")
    started = time.monotonic()
    assert stop_engine(tmp_path, log=lambda _: None, timeout=20) is True
    assert time.monotonic() - started < 5
    assert child.poll() is not None
    assert not (tmp_path / "started-here").exists()
