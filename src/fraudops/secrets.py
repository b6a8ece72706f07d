"""Secrets: generated on first start from the committed ``env/*.env.example`` files.

An example line ``KEY=<generate:token>`` becomes ``KEY=<random>`` in the git-ignored ``env/<name>.env``;
other lines are copied. An existing ``.env`` file is never overwritten, only completed with keys that a newer
example added, so data encrypted or protected with an old secret stays readable.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

_GENERATE = re.compile(r"^<generate:(token|fernet)>$")


def _generate(kind: str) -> str:
    if kind == "fernet":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    # URL-safe and free of characters that need quoting in connection URLs or shells
    return secrets.token_hex(24)


def _fill(example: Path, target: Path) -> list[str]:
    """Write the keys of ``example`` that ``target`` lacks; return the names added."""
    existing = dotenv_values(target) if target.exists() else {}
    added: list[str] = []
    lines: list[str] = []
    for line in example.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, value = stripped.split("=", 1)
        if key in existing:
            continue
        match = _GENERATE.match(value)
        lines.append(f"{key}={_generate(match.group(1)) if match else value}")
        added.append(key)
    if lines:
        fresh = not target.exists()
        with target.open("a") as f:
            if fresh:
                f.write(f"# generated from {example.name}; keep private, never commit\n")
            f.write("\n".join(lines) + "\n")
        target.chmod(0o600)
    return added


def _env_files(env_dir: Path) -> list[tuple[Path, Path]]:
    """(committed example, generated file) pairs: ``env/<name>.env.example`` -> ``env/<name>.env``."""
    return [
        (example, example.with_name(example.name.removesuffix(".example")))
        for example in sorted(env_dir.glob("*.env.example"))
    ]


def secrets_generated(env_dir: Path) -> bool:
    """Whether every secrets file exists (the first `make up` or `make secrets` creates them)."""
    return all(target.exists() for _, target in _env_files(env_dir))


def ensure_secrets(env_dir: Path) -> dict[str, list[str]]:
    """Create or complete every ``env/<name>.env`` from its example. Returns the keys added per file."""
    report: dict[str, list[str]] = {}
    for example, target in _env_files(env_dir):
        added = _fill(example, target)
        if added:
            report[target.name] = added
    return report


def load_secrets(env_dir: Path) -> Mapping[str, str]:
    """All generated secrets, as one read-only mapping. Fails clearly when they were never generated."""
    values: dict[str, str] = {}
    for _, target in _env_files(env_dir):
        if not target.exists():
            raise FileNotFoundError(f"{target} is missing: run `make secrets` (or `make up`) first")
        values.update({k: v for k, v in dotenv_values(target).items() if v is not None})
    return values


def mounted_secrets(env_dir: Path) -> Mapping[str, str]:
    """The secrets of those env files that are present: a container mounts only the files it needs."""
    values: dict[str, str] = {}
    # the mounted files only (a container has no examples beside them)
    for target in sorted(env_dir.glob("*.env")):
        values.update({k: v for k, v in dotenv_values(target).items() if v is not None})
    return values
