"""Where the native stack keeps binaries, jars, data, logs and pid files (all under one data folder)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from fraudops.private_files import PRIVATE_DIR, PRIVATE_FILE

# folders another local user may pass through but not list: the PostgreSQL server runs as its own user
# (when the stack runs as root) and must reach its data and socket folders under them
TRAVERSABLE = 0o711


@dataclass(frozen=True)
class StackLayout:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    @property
    def data(self) -> Path:
        """Service state; survives `make down`, wiped by `make clean`."""
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Pid files and generated service configuration."""
        return self.root / "run"

    def data_of(self, service: str) -> Path:
        return self.data / service

    def log_of(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid_of(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def supervisor_state_of(self, service: str) -> Path:
        """Crash count and last error of a service the stack restarts (:mod:`fraudops.stack.supervise`)."""
        return self.run / f"{service}.supervisor.json"

    def create(self) -> None:
        for folder in (self.bin, self.lib, self.data, self.logs, self.run):
            folder.mkdir(parents=True, exist_ok=True)
        self.restrict()

    def restrict(self) -> None:
        """Service state, logs, pid files and generated configuration (some hold passwords) readable by
        the owner only: the root, data and run folders can be passed through, each entry in them (and every
        log) is the owner's alone. What another user owns (PostgreSQL's folders) keeps its own 0700."""
        uid = os.getuid()
        for folder, mode in ((self.root, TRAVERSABLE), (self.data, TRAVERSABLE), (self.run, TRAVERSABLE)):
            _chmod_own(folder, mode, uid)
        _chmod_own(self.logs, PRIVATE_DIR, uid)
        for folder in (self.data, self.run, self.logs):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                _chmod_own(entry, PRIVATE_DIR if entry.is_dir() else PRIVATE_FILE, uid)


def _chmod_own(path: Path, mode: int, uid: int) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if info.st_uid == uid and not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) != mode:
        path.chmod(mode)
