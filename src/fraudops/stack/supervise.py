"""Keep a service running: restart it with backoff when it exits with an error, as compose's restart
policy does for the container.

    python -m fraudops.stack.supervise --state FILE -- COMMAND [ARGS...]

The supervisor is the process the native stack starts and tracks; the service runs as its child in the
same process group, so `make down` stops both. A SIGTERM or SIGINT is passed on and ends the supervisor
once the child has stopped; a child that exits with an error is started again after a delay that doubles
(1 s up to 60 s) and starts over once a run lasted 5 minutes. The child's output goes on to the
supervisor's (the service log); the state file says how often it crashed, its last error line and when
the next start is due, for `make status`.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
STABLE_AFTER_S = 300.0
_ERROR_WORDS = ("error", "exception", "failed", "fatal", "traceback")


@dataclass
class SupervisorState:
    state: str = "starting"  # running | backoff | stopped
    child_pid: int | None = None
    crashes: int = 0
    last_exit_code: int | None = None
    last_error: str = ""
    last_crash_at: float | None = None
    next_start_at: float | None = None

    def describe(self, now: float | None = None) -> str:
        """One line for `make status` (empty while nothing went wrong)."""
        if not self.crashes:
            return ""
        now = time.time() if now is None else now
        when = ""
        if self.state == "backoff" and self.next_start_at is not None:
            when = f", restarting in {max(0.0, self.next_start_at - now):.0f} s"
        reason = self.last_error or "no output"
        return f"crashed {self.crashes}x (last exit {self.last_exit_code}{when}): {reason}"


def read_state(path: Path) -> SupervisorState | None:
    try:
        return SupervisorState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def last_error_line(lines: Iterable[str]) -> str:
    """The line that best says why a process died: the last that names an error, else the last one."""
    kept = [line.strip() for line in lines if line.strip()]
    for line in reversed(kept):
        if any(word in line.lower() for word in _ERROR_WORDS):
            return line[:500]
    return kept[-1][:500] if kept else ""


def next_delay(previous: float | None, ran_for_s: float) -> float:
    """Backoff before the next start: doubling, capped, and back to the first step after a stable run."""
    if previous is None or ran_for_s >= STABLE_AFTER_S:
        return FIRST_DELAY_S
    return min(MAX_DELAY_S, previous * 2)


class Supervisor:
    def __init__(self, command: list[str], state_path: Path, out: IO[bytes]) -> None:
        self.command, self.state_path, self.out = command, state_path, out
        self.state = SupervisorState()
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.tail: deque[str] = deque(maxlen=200)

    def _save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.state)))
        tmp.replace(self.state_path)

    def stop(self, signum: int, _frame: object = None) -> None:
        self.stopping.set()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def _pump(self, child: subprocess.Popen[bytes]) -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            self.out.write(raw)
            self.out.flush()
            self.tail.append(raw.decode("utf-8", "replace"))

    def run(self) -> int:
        delay: float | None = None
        while not self.stopping.is_set():
            started = time.monotonic()
            self.tail.clear()
            self.child = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.state.state, self.state.child_pid, self.state.next_start_at = "running", self.child.pid, None
            self._save()
            pump = threading.Thread(target=self._pump, args=(self.child,), daemon=True)
            pump.start()
            code = self.child.wait()
            pump.join(5)
            if self.stopping.is_set() or code == 0:
                break
            delay = next_delay(delay, time.monotonic() - started)
            self.state.crashes += 1
            self.state.last_exit_code = code
            self.state.last_error = last_error_line(self.tail)
            self.state.last_crash_at = time.time()
            self.state.state, self.state.child_pid = "backoff", None
            self.state.next_start_at = time.time() + delay
            self._save()
            self.out.write(
                f"\n=== supervisor: exit {code}, restart #{self.state.crashes} in {delay:.0f} s\n".encode()
            )
            self.out.flush()
            self.stopping.wait(delay)
        self.state.state, self.state.child_pid, self.state.next_start_at = "stopped", None, None
        self._save()
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--state", type=Path, required=True, help="JSON file the supervisor keeps its state in"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise")
    supervisor = Supervisor(command, args.state, sys.stdout.buffer)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
