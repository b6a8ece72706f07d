"""In-memory implementations of the pipeline's interfaces for unit tests: the model registry (the alias
logic under test is the product's own, in :class:`fraudops.registry.ModelRegistry`; only the storage is a
dict), the lake and the audit log (keyed like ``model_metadata``'s unique index). The real ones (MLflow,
MinIO, Postgres) are tested on the stack in tests/integration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fraudops.audit import AuditRow
from fraudops.features import FEATURE_NAMES
from fraudops.registry import ModelRegistry, NoSuchVersion, VersionRef


class MemoryRegistry(ModelRegistry):
    def __init__(self, settings: Any) -> None:
        m = settings.mlflow
        super().__init__(m.model_name, m.champion_alias, m.previous_alias)
        self.versions: dict[str, VersionRef] = {}
        self.models: dict[str, tuple[Any, Sequence[str] | None]] = {}
        self.aliases: dict[str, str] = {}
        # alias -> the error the next move of it raises (a registry failing mid-promotion)
        self.fail_next_move: dict[str, Exception] = {}
        self.moves: list[tuple[str, str]] = []

    def add(
        self, model: Any, tags: Mapping[str, str] | None = None, inputs: Sequence[str] | None = None
    ) -> str:
        """Register ``model`` (a native :class:`fraudops.model_families.FraudModel`) directly."""
        ref = self.register(f"memory:/{len(self.versions) + 1}", tags or {})
        self.models[ref.version] = (model, list(FEATURE_NAMES) if inputs is None else inputs)
        return ref.version

    def register(self, model_uri: str, tags: Mapping[str, str]) -> VersionRef:
        version = str(len(self.versions) + 1)
        ref = VersionRef(version, f"run-{version}", {k: str(v) for k, v in tags.items()})
        self.versions[version] = ref
        return ref

    def get(self, version: str) -> VersionRef:
        try:
            return self.versions[str(version)]
        except KeyError:
            raise NoSuchVersion(f"{self.model_name} has no version {version}") from None

    def find(self, tags: Mapping[str, str]) -> list[VersionRef]:
        return [r for r in self.versions.values() if all(r.tags.get(k) == v for k, v in tags.items())]

    def by_alias(self, alias: str) -> VersionRef | None:
        version = self.aliases.get(alias)
        return self.versions[version] if version else None

    def _set_alias(self, alias: str, version: str) -> None:
        if alias in self.fail_next_move:
            raise self.fail_next_move.pop(alias)
        self.aliases[alias] = version
        self.moves.append((alias, version))

    def _delete_alias(self, alias: str) -> None:
        self.aliases.pop(alias, None)

    def _load(self, version: str) -> tuple[Any, Sequence[str] | None]:
        return self.models[self.get(version).version]


class MemoryLake:
    def __init__(self) -> None:
        self.frames: dict[str, pd.DataFrame] = {}

    def uri(self, run_key: str, name: str) -> str:
        return f"memory://lake/{run_key}/{name}.parquet"

    def write(self, frame: pd.DataFrame, uri: str) -> str:
        self.frames[uri] = frame.copy()
        return uri

    def read(self, uri: str) -> pd.DataFrame:
        return self.frames[uri].copy()


class MemoryAudit:
    """Rows with a key replace the row of the same key, as the upsert on ``model_metadata`` does."""

    def __init__(self) -> None:
        self.rows: list[AuditRow] = []

    def record(self, rows: Sequence[AuditRow]) -> None:
        for row in rows:
            same = [i for i, r in enumerate(self.rows) if row.key is not None and r.key == row.key]
            if same:
                self.rows[same[0]] = row
            else:
                self.rows.append(row)
