"""The console's people: a name, a role (analyst or viewer) and an scrypt hash of the password, kept in one
JSON file beside the stack's secrets (``console.users_file``, git-ignored, mode 600).

Only hashes are stored: a login hashes what was typed with the user's salt and compares in constant time.
The first start creates ``analyst`` and ``viewer`` from the passwords generated into ``env/console.env``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudops.private_files import write_private

ROLES: tuple[str, ...] = ("analyst", "viewer")
# roles whose verdicts become labels; the check is made where the label is written, not in the page
LABELLING_ROLES: frozenset[str] = frozenset({"analyst"})
# the people `make up` creates, and the secret holding each one's first password
DEFAULT_USERS: dict[str, tuple[str, str]] = {
    "analyst": ("analyst", "CONSOLE_ANALYST_PASSWORD"),
    "viewer": ("viewer", "CONSOLE_VIEWER_PASSWORD"),
}
# scrypt cost: 32 MiB and ~0.1 s per hash (Python's own recommendation for interactive logins is n=2**14)
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def can_label(self) -> bool:
        return self.role in LABELLING_ROLES


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), the form stored in the users file."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=_MAXMEM,
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)


class UserStore:
    """The users file: ``{"users": {name: {"role": ..., "password": "scrypt$..."}}}``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        return dict(json.loads(self.path.read_text())["users"])

    def _write(self, users: Mapping[str, Mapping[str, str]]) -> None:
        # private: the hashes are not secrets in clear, but nobody else needs to read them
        write_private(self.path, json.dumps({"users": dict(users)}, indent=2, sort_keys=True))

    def names(self) -> list[str]:
        return sorted(self._read())

    def set_user(self, name: str, role: str, password: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not name or not name.isprintable() or len(name) > 64:
            raise ValueError("a user name is 1 to 64 printable characters")
        if len(password) < 8:
            raise ValueError("a password has at least 8 characters")
        users = self._read()
        users[name] = {"role": role, "password": hash_password(password)}
        self._write(users)

    def remove_user(self, name: str) -> bool:
        users = self._read()
        if users.pop(name, None) is None:
            return False
        self._write(users)
        return True

    def authenticate(self, name: str, password: str) -> User | None:
        entry = self._read().get(name)
        if entry is None:
            # as slow as a wrong password, so a login does not tell which names exist
            verify_password(password, hash_password("not-a-user", salt=b"0" * 16))
            return None
        if not verify_password(password, entry["password"]):
            return None
        return User(name, entry["role"])


def ensure_console_users(settings: Any) -> list[str]:
    """The default people in ``console.users_file``, from the generated secrets (run after them)."""
    from fraudops.secrets import load_secrets

    store = UserStore(settings.path(settings.console.users_file))
    return ensure_default_users(store, load_secrets(settings.env_dir))


def ensure_default_users(store: UserStore, secrets: Mapping[str, str]) -> list[str]:
    """Create the default people that the file lacks (never overwrites a changed password); their names."""
    existing = set(store.names())
    added = []
    for name, (role, secret) in DEFAULT_USERS.items():
        if name not in existing and secrets.get(secret):
            store.set_user(name, role, secrets[secret])
            added.append(name)
    return added
