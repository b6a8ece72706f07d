"""The native stack's restart policy: a real child process that crashes is started again with backoff,
its last error is kept for `make status`, and a stop ends both."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from fraudops.stack.supervise import SupervisorState, last_error_line, next_delay, read_state

CRASH_TWICE = """
import pathlib, sys, time
runs = pathlib.Path(sys.argv[1])
n = int(runs.read_text()) if runs.exists() else 0
runs.write_text(str(n + 1))
print(f"run {n}", flush=True)
if n < 2:
    print(f"ValueError: bad thing number {n}", flush=True)
    print("shutting down", flush=True)
    sys.exit(3)
time.sleep(600)
"""


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_crashing_child_is_restarted_with_backoff_and_stopped_with_the_supervisor(tmp_path) -> None:
    state_file, runs, log = tmp_path / "state.json", tmp_path / "runs", tmp_path / "service.log"
    script = tmp_path / "child.py"
    script.write_text(CRASH_TWICE)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "fraudops.stack.supervise", "--state", str(state_file), "--"]
        + [sys.executable, str(script), str(runs)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        # two crashes: 1 s and 2 s of backoff, then a third run that stays up
        _wait_for(lambda: runs.exists() and runs.read_text() == "3")
        _wait_for(lambda: (read_state(state_file) or SupervisorState()).state == "running")
        state = read_state(state_file)
        assert state is not None and state.crashes == 2 and state.last_exit_code == 3
        assert state.last_error == "ValueError: bad thing number 1"
        child = state.child_pid
        assert child is not None and Path(f"/proc/{child}").exists()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 0
        _wait_for(lambda: not Path(f"/proc/{child}").exists() or "Z" in _proc_state(child))
        assert read_state(state_file).state == "stopped"
        text = log.read_text()
        assert "run 0" in text and "run 2" in text and "restart #2 in 2 s" in text
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_backoff_doubles_up_to_a_cap_and_starts_over_after_a_stable_run() -> None:
    delays, delay = [], None
    for _ in range(9):
        delay = next_delay(delay, ran_for_s=2)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert next_delay(60, ran_for_s=3600) == 1


def test_the_error_line_is_the_last_that_names_an_error() -> None:
    lines = [
        "starting",
        "Traceback (most recent call last):",
        "OverflowError: date value out of range",
        "bye",
    ]
    assert last_error_line(lines) == "OverflowError: date value out of range"
    assert last_error_line(["just", "stopped"]) == "stopped"
    assert last_error_line([]) == ""


def test_state_description_for_status() -> None:
    state = SupervisorState(
        state="backoff", crashes=3, last_exit_code=1, last_error="boom", next_start_at=time.time() + 8
    )
    assert state.describe().startswith("crashed 3x (last exit 1, restarting in ")
    assert state.describe().endswith(": boom")
    assert SupervisorState().describe() == ""
    assert json.loads(json.dumps(state.__dict__))["crashes"] == 3
