"""Files only their owner may read (secrets, generated configurations that hold them), written whole or not
at all: a server starting beside a rewrite never reads half a file."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, readable by the owner only from its first byte, replaced atomically
    (several containers of one image may write the same file at once). A missing parent folder is created
    private too."""
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    # O_CREAT's mode passes through the umask, and an existing leftover keeps its own
    os.chmod(tmp, PRIVATE_FILE)
    os.replace(tmp, path)
    return path
