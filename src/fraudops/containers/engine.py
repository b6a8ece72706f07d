"""The Docker engine under the compose stack. One that answers is used as it is; otherwise Debian's
``docker.io`` is installed when missing and ``dockerd`` started in the background (a fresh machine, CI), and
``stop_engine`` stops only an engine started here."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ENGINE_PACKAGES = ("docker.io",)
START_TIMEOUT_S = 90.0


class EngineError(RuntimeError):
    pass


def engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def apt_install(packages: Sequence[str], log: Callable[[str], None]) -> None:
    """Install Debian packages (with sudo unless root); Debian's attempt to start a packaged service is
    refused here on purpose, the caller starts what it needs."""
    missing = [
        p
        for p in packages
        if "install ok installed"
        not in subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout
    ]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    log(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _pid_alive(pid: int) -> bool:
    try:
        # dockerd started by this process is its child: reap it once it exited (a zombie answers kill 0)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def ensure_engine(state_dir: Path, log: Callable[[str], None] = print) -> bool:
    """A Docker engine that answers. Returns True when it was started here (``stop_engine`` stops it)."""
    if engine_answers():
        return False
    if not shutil.which("dockerd"):
        apt_install(ENGINE_PACKAGES, log)
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker engine answers and starting dockerd needs root: start Docker (e.g. "
            "`sudo systemctl start docker`) and add yourself to the docker group"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    log_file = state_dir / "dockerd.log"
    log(f"starting dockerd (log: {log_file})")
    with log_file.open("ab") as out:
        process = subprocess.Popen(
            ["dockerd", "--pidfile", str(state_dir / "dockerd.pid")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (state_dir / "started-here").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineError(f"dockerd exited with {process.returncode}: see {log_file}")
        if engine_answers():
            return True
        time.sleep(1)
    raise EngineError(f"dockerd did not answer within {START_TIMEOUT_S:.0f} s: see {log_file}")


def stop_engine(state_dir: Path, log: Callable[[str], None] = print, timeout: float = 60.0) -> bool:
    """Stop the engine ``ensure_engine`` started (nothing else). Returns True when one was stopped."""
    marker = state_dir / "started-here"
    if not marker.is_file():
        return False
    pid = int(marker.read_text().strip())
    marker.unlink()
    if not _pid_alive(pid):
        return False
    log("stopping dockerd")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True
