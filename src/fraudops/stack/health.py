"""Health probes: each returns (healthy, detail) and never raises."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


# The server answered but its reply was cut (a busy JVM's Jetty under start-up load does this now
# and then): asking again tells a live service from a dead one, a refused or silent port does not.
_CUT_REPLY = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)


def http(url: str, auth: tuple[str, str] | None = None, timeout: float = 3.0, attempts: int = 3) -> Health:
    for attempt in range(1, attempts + 1):
        try:
            response = requests.get(url, auth=auth, timeout=timeout)
        except _CUT_REPLY as exc:
            if attempt == attempts:
                return Health(False, type(exc).__name__)
            time.sleep(0.2 * attempt)
            continue
        except requests.RequestException as exc:
            return Health(False, type(exc).__name__)
        return Health(response.ok, f"HTTP {response.status_code}")
    raise AssertionError("unreachable")


def http_json(url: str, timeout: float = 3.0, attempts: int = 3) -> Any:
    """The JSON body of a GET, asked again when the reply was cut; raises on any other failure."""
    for attempt in range(1, attempts + 1):
        try:
            response = requests.get(url, timeout=timeout)
        except _CUT_REPLY:
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
            continue
        response.raise_for_status()
        return response.json()
    raise AssertionError("unreachable")


def guarded(probe: Probe) -> Probe:
    def run() -> Health:
        try:
            return probe()
        except Exception as exc:  # a probe reports, it never takes `status` down
            return Health(False, f"{type(exc).__name__}: {exc}"[:120])

    return run
