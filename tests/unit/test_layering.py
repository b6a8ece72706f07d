"""The native stack is a room of its own: only the entry points that drive it (the CLI and `make demo`) and
the stack itself import it, so the pipeline, scorer and producer run the same in containers."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "fraudops"
# `fraudops monitor exec` runs the native stack's monitoring processes in the compose containers
ALLOWED = {"cli.py", "demo.py", "commands/monitor.py"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_only_entry_points_and_the_stack_import_the_stack() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "stack" or relative.as_posix() in ALLOWED:
            continue
        if any(name == "fraudops.stack" or name.startswith("fraudops.stack.") for name in _imports(path)):
            offenders.append(relative.as_posix())
    assert offenders == []
