"""Health probes: each returns (healthy, detail) and never raises."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


Probe = Callable[[], Health]


def tcp(host: str, port: int, timeout: float = 1.0) -> Health:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return Health(True, "port open")
    except OSError as exc:
        return Health(False, f"{host}:{port} {exc.strerror or exc}")


def http(url: str, auth: tuple[str, str] | None = None, timeout: float = 3.0) -> Health:
    try:
        response = requests.get(url, auth=auth, timeout=timeout)
    except requests.RequestException as exc:
        return Health(False, type(exc).__name__)
    return Health(response.ok, f"HTTP {response.status_code}")


def guarded(probe: Probe) -> Probe:
    def run() -> Health:
        try:
            return probe()
        except Exception as exc:  # a probe reports, it never takes `status` down
            return Health(False, f"{type(exc).__name__}: {exc}"[:120])

    return run
