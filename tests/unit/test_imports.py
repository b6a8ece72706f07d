"""Every `from fraudops... import name` in the code resolves, the ones inside functions included (the
package imports heavy libraries lazily, so a moved or renamed name would otherwise fail only at run time,
in the one code path that reaches it)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p
    for folder in ("src/fraudops", "dags", "plugins", "spark-jobs", "scripts")
    for p in (REPO / folder).rglob("*.py")
)


def _imports(path: Path) -> list[tuple[int, str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "fraudops" or node.module.startswith("fraudops."):
                found.extend((node.lineno, node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, "") for a in node.names if a.name.startswith("fraudops."))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_name_imported_from_the_package_exists(path: Path) -> None:
    missing = []
    for line, module, name in _imports(path):
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{line}: {module} ({exc})")
            continue
        if name and name != "*" and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{line}: {module}.{name}")
    assert missing == []
