"""The champion model of the scorer: loaded from the registry, swapped between micro-batches only, with a
last-known-good copy on disk for when MLflow or MinIO cannot be reached.

:class:`ChampionWatcher` checks the alias in a background thread (every ``poll_interval_s``, and at once
when a ``model_updates`` event names the model) and stages a newly promoted version; the scorer calls
:meth:`ChampionWatcher.for_batch` at the start of each micro-batch, which is the only place the model in
use changes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from fraudops.model_families import CatBoostModel, FraudModel, XGBoostModel
from fraudops.registry import ModelRegistry, SignatureMismatch, check_signature

log = logging.getLogger(__name__)

_FILES = {"xgboost": "model.ubj", "catboost": "model.cbm"}
_POINTER = "last_known_good.json"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    family: str
    run_id: str = ""
    # "registry" or "last-known-good"
    source: str = "registry"


@dataclass
class LoadedModel:
    info: ModelInfo
    model: FraudModel


# -- the last-known-good copy ----------------------------------------------------------------------------


def save_last_known_good(folder: Path, loaded: LoadedModel) -> Path:
    """Write the model natively under ``folder/<name>/v<version>/`` and point ``last_known_good.json`` at it
    (written atomically, so a crash leaves the previous copy in force)."""
    base = folder / loaded.info.name
    target = base / f"v{loaded.info.version}"
    tmp = base / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / _FILES[loaded.info.family]
    if isinstance(loaded.model, XGBoostModel):
        loaded.model.booster.save_model(str(path))
    elif isinstance(loaded.model, CatBoostModel):
        loaded.model.model.save_model(str(path))
    else:  # pragma: no cover
        raise TypeError(f"cannot save {type(loaded.model).__name__}")
    # the feature list it takes, checked when the copy is loaded by a later release
    meta = {**asdict(loaded.info), "features": list(loaded.model.feature_names)}
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    pointer_tmp = base / f".{_POINTER}.tmp"
    pointer_tmp.write_text(json.dumps({"folder": target.name, **asdict(loaded.info)}))
    os.replace(pointer_tmp, base / _POINTER)
    # keep the current and one previous copy
    for old in sorted(p for p in base.glob("v*") if p.is_dir() and p != target)[:-1]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_last_known_good(folder: Path, name: str) -> LoadedModel:
    base = folder / name
    pointer = json.loads((base / _POINTER).read_text())
    target = base / pointer["folder"]
    meta = json.loads((target / "meta.json").read_text())
    check_signature(meta.pop("features", None), f"the last-known-good copy {target}")
    meta["source"] = "last-known-good"
    info = ModelInfo(**meta)
    path = target / _FILES[info.family]
    if info.family == "xgboost":
        import xgboost as xgb

        model: FraudModel = XGBoostModel(xgb.Booster(model_file=str(path)))
    else:
        from catboost import CatBoostClassifier

        model = CatBoostModel(CatBoostClassifier().load_model(str(path)))
    return LoadedModel(info, model)


# -- the champion ------------------------------------------------------------------------------------------


class ChampionWatcher:
    """Follows the registry's champion alias (:class:`fraudops.registry.ModelRegistry`, whose alias comes
    from the settings, as the pipeline's that moves it)."""

    def __init__(
        self,
        registry: ModelRegistry,
        last_known_good: Path,
        poll_interval_s: float,
        bootstrap_servers: str | None = None,
        updates_topic: str | None = None,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self.registry = registry
        # told (version, reason) when a new champion is refused: the scorer's metrics count it
        self.on_refused = on_refused
        self.name, self.alias = registry.model_name, registry.champion_alias
        self.last_known_good = last_known_good
        self.poll_interval_s = poll_interval_s
        self.bootstrap_servers, self.updates_topic = bootstrap_servers, updates_topic
        self.current: LoadedModel | None = None
        self._staged: LoadedModel | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.swaps = 0

    # -- start and stop -----------------------------------------------------------------------------------
    def start(self) -> LoadedModel:
        """Load the champion (from the registry, else the last-known-good copy) and start watching."""
        try:
            self.current = self._fetch()
        except Exception as exc:  # MLflow or MinIO down, or no champion yet
            log.warning(
                "champion of %s not loadable from the registry (%s); trying last-known-good", self.name, exc
            )
            try:
                self.current = load_last_known_good(self.last_known_good, self.name)
            except FileNotFoundError as missing:
                raise RuntimeError(
                    f"no champion for {self.name}: the registry failed ({exc}) and there is no "
                    f"last-known-good copy under {self.last_known_good / self.name}"
                ) from missing
        log.info("scoring with %s v%s (%s)", self.name, self.current.info.version, self.current.info.source)
        self._threads = [threading.Thread(target=self._poll_loop, name="champion-poll", daemon=True)]
        if self.bootstrap_servers and self.updates_topic:
            self._threads.append(threading.Thread(target=self._listen, name="model-updates", daemon=True))
        for thread in self._threads:
            thread.start()
        return self.current

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)

    # -- the swap point -----------------------------------------------------------------------------------
    def for_batch(self) -> LoadedModel:
        """The model for the next micro-batch: a staged new version takes over here, never mid-batch."""
        with self._lock:
            if self._staged is not None:
                old = self.current.info.version if self.current else None
                self.current, self._staged = self._staged, None
                self.swaps += 1
                log.info("model swap %s: v%s -> v%s", self.name, old, self.current.info.version)
        assert self.current is not None, "start() first"
        return self.current

    # -- background work ----------------------------------------------------------------------------------
    def _fetch(self, known: str | None = None) -> LoadedModel | None:
        champion = self.registry.champion()
        if champion is None:
            raise LookupError(f"{self.name} has no @{self.alias} version")
        if champion.version == known:
            return None
        model = self.registry.load(champion.version)  # a version: the alias may move while we download
        loaded = LoadedModel(ModelInfo(self.name, champion.version, model.family, champion.run_id), model)
        try:
            save_last_known_good(self.last_known_good, loaded)
        except OSError as exc:
            log.warning("could not write the last-known-good copy: %s", exc)
        return loaded

    def check_now(self) -> None:
        """Check the alias once (what the poll thread does); stage a new version if there is one."""
        with self._lock:
            known = (self._staged or self.current).info.version if (self._staged or self.current) else None
        loaded = self._fetch(known)
        if loaded is not None:
            with self._lock:
                self._staged = loaded
            log.info("staged %s v%s for the next micro-batch", self.name, loaded.info.version)

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.poll_once()

    def poll_once(self) -> None:
        """One check of the alias that never raises: a failure keeps the model in use."""
        try:
            self.check_now()
        except SignatureMismatch as exc:  # a champion this code cannot feed: keep the current one
            log.error("champion refused, keeping v%s: %s", self.current.info.version, exc)
            if self.on_refused is not None:
                self.on_refused(exc.version, "signature")
        except Exception as exc:  # keep scoring with the current model
            log.warning("champion check failed, keeping v%s: %s", self.current.info.version, exc)

    def _listen(self) -> None:
        from confluent_kafka import Consumer

        from fraudops.signals import ModelUpdate

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                # its own group: every scorer instance hears every update
                "group.id": f"fraudops-scorer-updates-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([self.updates_topic])
        try:
            while not self._stop.is_set():
                msg = consumer.poll(1.0)
                if msg is None or msg.error():
                    continue
                try:
                    update = ModelUpdate.from_json(msg.value())
                except (TypeError, ValueError):
                    continue
                if update.model_name == self.name:
                    log.info("model_updates: %s v%s (%s)", update.model_name, update.version, update.action)
                    self._wake.set()
        finally:
            consumer.close()
