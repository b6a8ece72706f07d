"""Where the native stack keeps binaries, jars, data, logs and pid files (all under one data folder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
