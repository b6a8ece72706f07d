"""Start and stop the stack's processes, tracked by pid files.

A pid file records the pid and the kernel start time of the process, so `down` signals exactly the
processes that `up` started and never a stranger that reused a pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fraudops.stack.layout import StackLayout


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # run as this system user (PostgreSQL refuses to run as root)
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 30.0


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 22 (starttime), counted after the parenthesised command name, which may hold spaces
    return stat.rsplit(")", 1)[1].split()[19]


def running_pid(layout: StackLayout, name: str) -> int | None:
    pid_file = layout.pid_of(name)
    try:
        record = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        return None
    pid = int(record["pid"])
    if _start_time(pid) != record.get("start_time"):
        return None
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return None if state == "Z" else pid


def start(spec: ProcessSpec, layout: StackLayout) -> tuple[int, bool]:
    """Start ``spec`` unless it already runs. Returns (pid, started_now)."""
    pid = running_pid(layout, spec.name)
    if pid:
        return pid, False
    log_file = layout.log_of(spec.name)
    with log_file.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            spec.argv,
            env={**os.environ, **spec.env},
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # a session of its own: `down` signals the whole group (servers with worker children)
            start_new_session=True,
            user=spec.user,
        )
    layout.pid_of(spec.name).write_text(
        json.dumps({"pid": proc.pid, "start_time": _start_time(proc.pid), "argv": spec.argv[:3]})
    )
    return proc.pid, True


def stop(layout: StackLayout, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Stop the process group started for ``name``. Returns whether something was running."""
    pid = running_pid(layout, name)
    if pid is None:
        layout.pid_of(name).unlink(missing_ok=True)  # stale: the process is gone
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.2)
    if _group_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.5)
    layout.pid_of(name).unlink(missing_ok=True)
    return True


def command_lines() -> dict[int, str]:
    """Every process's command line (what `ps` shows any local user), by pid."""
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            lines[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return lines


def environ_of(pid: int) -> dict[str, str] | None:
    """The environment ``pid`` started with (``/proc/<pid>/environ``); None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (entry.decode(errors="replace").partition("=") for entry in raw.split(b"\0") if entry)
    return {key: value for key, _, value in pairs}


def _proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) of every live process: fields[0] is
    the state, fields[1] the parent pid, fields[2] the process group."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(entry.name), fields


def descendants(roots: set[int]) -> set[int]:
    """``roots`` and every live process below them (children that left the process group included)."""
    children: dict[int, list[int]] = {}
    for pid, fields in _proc_stats():
        children.setdefault(int(fields[1]), []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def group_members(pgid: int) -> list[int]:
    return [pid for pid, fields in _proc_stats() if int(fields[2]) == pgid and fields[0] != "Z"]


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def group_memory_mib(pgid: int) -> float:
    """Proportional set size (PSS) of a process group: shared pages counted once across the stack."""
    total_kib = 0
    for pid in group_members(pgid):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total_kib / 1024
