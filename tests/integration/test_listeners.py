"""The native stack listens on the configured host only.

Every process of every service (each service runs in its own process group) is matched with the listening
TCP sockets `ss` reports; an address other than `stack.host` is a finding, except the other loopback
address when the host itself is a loopback one (MinIO answers on ::1 beside 127.0.0.1)."""

from __future__ import annotations

import ipaddress
import re
import subprocess

from fraudops.stack import process

SS_LINE = re.compile(r"^\S+\s+\d+\s+\d+\s+(?P<address>\S+):(?P<port>\d+)\s+\S+\s+users:\((?P<users>.*)\)$")
PID = re.compile(r"pid=(\d+)")


def _listeners() -> list[tuple[str, int, set[int]]]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        match = SS_LINE.match(line.strip())
        if match:
            address = match.group("address").strip("[]").removeprefix("::ffff:")
            found.append(
                (address, int(match.group("port")), {int(p) for p in PID.findall(match.group("users"))})
            )
    return found


def _acceptable(address: str, host: str) -> bool:
    if address == host:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def test_every_listener_of_the_stack_is_on_the_configured_host(running_stack) -> None:
    layout = running_stack.stack.layout
    owner: dict[int, str] = {}
    for name in running_stack.stack.services():
        leader = process.running_pid(layout, name)
        if leader:
            owner.update(dict.fromkeys(process.group_members(leader), name))
    assert len(set(owner.values())) >= 10, f"the stack is not running: {sorted(set(owner.values()))}"
    host = running_stack.settings.stack.host
    ours = [(a, p, pids & owner.keys()) for a, p, pids in _listeners() if pids & owner.keys()]
    assert ours, "no listener found for the stack's processes (is `ss` allowed to see them?)"
    wrong = sorted(
        f"{owner[min(pids)]} listens on {address}:{port}"
        for address, port, pids in ours
        if not _acceptable(address, host)
    )
    assert wrong == [], f"listeners off {host}: {wrong}"


def _open_to_others(path, allowed: int) -> int:
    """The permission bits of ``path`` that group and others have beyond ``allowed``."""
    return path.stat().st_mode & 0o077 & ~allowed


def test_state_logs_and_configuration_are_the_owners_alone(running_stack) -> None:
    """Service data (MinIO objects, the Redis dump, Kafka logs, Prometheus), logs, pid files and generated
    configuration (Redis's password, the webhook URL) are readable by their owner only; the folders above
    them can only be passed through."""
    layout = running_stack.stack.layout
    findings = []
    for folder in (layout.root, layout.data, layout.run):
        if _open_to_others(folder, 0o011):
            findings.append(f"{folder}: {folder.stat().st_mode & 0o777:o}")
    entries = [layout.logs, *layout.data.iterdir(), *layout.run.iterdir(), *layout.logs.iterdir()]
    for entry in entries:
        if _open_to_others(entry, 0):
            findings.append(f"{entry}: {entry.stat().st_mode & 0o777:o}")
    assert findings == []
    services = {p.name for p in layout.data.iterdir()}
    assert {"minio", "redis", "kafka-1", "prometheus", "postgres"} <= services
