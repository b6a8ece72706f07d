"""The pid-file process manager, on real child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from fraudops.stack import process
from fraudops.stack.layout import StackLayout
from fraudops.stack.process import ProcessSpec


def _layout(tmp_path) -> StackLayout:
    layout = StackLayout(tmp_path)
    layout.create()
    return layout


def test_start_is_idempotent_and_stop_ends_the_whole_group(tmp_path) -> None:
    layout = _layout(tmp_path)
    # a parent with a child, like servers with worker processes
    code = (
        "import subprocess, sys, time;"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    spec = ProcessSpec("sleeper", [sys.executable, "-c", code])
    pid, started = process.start(spec, layout)
    assert started and process.running_pid(layout, "sleeper") == pid
    assert process.start(spec, layout) == (pid, False)
    time.sleep(0.5)
    assert process._group_alive(pid)

    assert process.stop(layout, "sleeper", signal.SIGTERM, timeout=5)
    assert not process._group_alive(pid)
    assert process.running_pid(layout, "sleeper") is None
    assert not process.stop(layout, "sleeper")


def test_a_reused_pid_is_not_mistaken_for_ours(tmp_path) -> None:
    layout = _layout(tmp_path)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # a pid file naming a live process that we did not start (another start time)
        layout.pid_of("ghost").write_text(json.dumps({"pid": stranger.pid, "start_time": "1"}))
        assert process.running_pid(layout, "ghost") is None
        assert not process.stop(layout, "ghost")
        assert stranger.poll() is None, "down must never signal a process it did not start"
    finally:
        stranger.kill()
        stranger.wait()


def test_output_goes_to_the_service_log(tmp_path) -> None:
    layout = _layout(tmp_path)
    spec = ProcessSpec("echo", [sys.executable, "-c", "print('hello from the service')"], env={"X": "1"})
    process.start(spec, layout)
    deadline = time.monotonic() + 10
    while "hello" not in layout.log_of("echo").read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "hello from the service" in layout.log_of("echo").read_text()
    assert os.path.exists(layout.pid_of("echo"))


def test_the_layout_keeps_state_logs_and_configuration_private(tmp_path) -> None:
    layout = StackLayout(tmp_path / "stack")
    layout.create()
    (layout.data_of("minio")).mkdir()
    (layout.run / "redis.conf").write_text("requirepass x")
    (layout.log_of("minio")).write_text("")
    os.chmod(layout.data_of("minio"), 0o755)
    os.chmod(layout.run / "redis.conf", 0o644)
    layout.restrict()
    modes = {p: p.stat().st_mode & 0o777 for p in (layout.root, layout.data, layout.run, layout.logs)}
    assert modes == {layout.root: 0o711, layout.data: 0o711, layout.run: 0o711, layout.logs: 0o700}
    assert layout.data_of("minio").stat().st_mode & 0o777 == 0o700
    assert (layout.run / "redis.conf").stat().st_mode & 0o777 == 0o600
    assert layout.log_of("minio").stat().st_mode & 0o777 == 0o600
