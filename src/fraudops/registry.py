"""The model registry behind one interface: register a version, find the champion and the previous
version, move the champion alias, roll back, load a version as its native booster.

The alias names come from the settings only (``mlflow.champion_alias``, ``mlflow.previous_alias``): the
pipeline that moves the champion and the scorer that follows it build their registry from the same
setting. The alias logic (what moves first, what is put back when a move fails) lives in
:class:`ModelRegistry` once; an implementation supplies the storage primitives (:class:`MlflowRegistry`
for the product, an in-memory one for the unit tests).

Loading checks the model's signature against :data:`fraudops.features.FEATURE_NAMES`: a model that takes
an input this code does not compute is refused with a clear error instead of scoring garbage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fraudops.features import FEATURE_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from fraudops.config.settings import Settings
    from fraudops.model_families import FraudModel


class SignatureMismatch(ValueError):
    """A model whose input signature is not the feature list this code computes."""

    def __init__(self, message: str, version: str = "") -> None:
        super().__init__(message)
        self.version = version


class NoSuchVersion(LookupError):
    pass


@dataclass(frozen=True)
class VersionRef:
    """A registered model version, as much of it as the pipeline and the scorer use."""

    version: str
    run_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def family(self) -> str | None:
        return self.tags.get("family")


def check_signature(inputs: Sequence[str] | None, source: str) -> None:
    """Raise :class:`SignatureMismatch` unless every input of ``inputs`` is a feature this code computes,
    once. A model may take fewer (one trained before a feature was added keeps serving until its
    successor is promoted: the scorer and the evaluation read a model's own columns by name)."""
    known = list(FEATURE_NAMES)
    if not inputs:
        raise SignatureMismatch(f"{source} has no input signature: cannot check it takes features of {known}")
    unknown = [n for n in inputs if n not in known]
    repeated = sorted({n for n in inputs if list(inputs).count(n) > 1})
    if unknown or repeated:
        raise SignatureMismatch(
            f"{source} takes inputs this code does not compute (unknown {unknown}, repeated {repeated}): "
            "retrain it or run a matching release"
        )


class ModelRegistry(ABC):
    """One registered model and its two aliases."""

    def __init__(self, model_name: str, champion_alias: str, previous_alias: str) -> None:
        if champion_alias == previous_alias:
            raise ValueError(f"the champion and previous aliases must differ (both {champion_alias!r})")
        self.model_name = model_name
        self.champion_alias = champion_alias
        self.previous_alias = previous_alias

    # -- what an implementation provides -----------------------------------------------------------------
    @abstractmethod
    def register(self, model_uri: str, tags: Mapping[str, str]) -> VersionRef:
        """A new version of the model from a logged model's URI."""

    @abstractmethod
    def get(self, version: str) -> VersionRef:
        """The version, or :class:`NoSuchVersion`."""

    @abstractmethod
    def find(self, tags: Mapping[str, str]) -> list[VersionRef]:
        """The versions carrying all of ``tags``, oldest first."""

    @abstractmethod
    def by_alias(self, alias: str) -> VersionRef | None:
        """The version ``alias`` points at; None when the alias (or the model) does not exist."""

    @abstractmethod
    def _set_alias(self, alias: str, version: str) -> None: ...

    @abstractmethod
    def _delete_alias(self, alias: str) -> None: ...

    @abstractmethod
    def _load(self, version: str) -> tuple[FraudModel, Sequence[str] | None]:
        """The version's native model and its signature's input names (None without a signature)."""

    # -- the operations ----------------------------------------------------------------------------------
    def champion(self) -> VersionRef | None:
        return self.by_alias(self.champion_alias)

    def previous(self) -> VersionRef | None:
        return self.by_alias(self.previous_alias)

    def set_champion(self, version: str) -> str | None:
        """Point the champion alias at ``version`` and the previous alias at the old champion; returns the
        old champion's version. If moving the champion fails, the previous alias is put back, so a failed
        promotion leaves the registry as it was."""
        version = str(version)
        self.get(version)  # an unknown version fails before any alias moves
        current = self.champion()
        old_previous = self.previous()
        if current and current.version != version:
            self._set_alias(self.previous_alias, current.version)
        try:
            self._set_alias(self.champion_alias, version)
        except Exception:
            if current and current.version != version:
                if old_previous:
                    self._set_alias(self.previous_alias, old_previous.version)
                else:
                    self._delete_alias(self.previous_alias)
            raise
        return current.version if current else None

    def rollback(self) -> tuple[VersionRef, str | None]:
        """The champion back to the previous version (which the demoted one replaces); returns the new
        champion and the demoted version."""
        target = self.previous()
        if target is None:
            raise RuntimeError(f"{self.model_name} has no @{self.previous_alias} version to roll back to")
        return target, self.set_champion(target.version)

    def load(self, version: str) -> FraudModel:
        """The version as its native booster, refused unless it takes this code's feature list."""
        model, inputs = self._load(str(version))
        try:
            check_signature(inputs, f"{self.model_name} v{version}")
        except SignatureMismatch as exc:
            raise SignatureMismatch(str(exc), str(version)) from None
        return model


# -- MLflow -------------------------------------------------------------------------------------------------
# what MLflow answers for an alias or a model that does not exist (anything else, e.g. an unreachable
# server, is an error, not "no champion")
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}
# a refused login or grant: the resource may well exist, this account may not see or change it
_REFUSED = {"PERMISSION_DENIED", "UNAUTHENTICATED"}


class RegistryAccessDenied(PermissionError):
    pass


def is_absent(exc: Any) -> bool:
    """Whether MLflow's error ``exc`` says the model, version or alias does not exist. A 401 or 403 is
    not "absent" by itself: treating a refusal as "no champion" would let a client with the wrong account
    act as if the registry were empty (:func:`refused` names it instead; :func:`version_by_alias` tells
    the two apart where MLflow answers 403 for what does not exist)."""
    code = getattr(exc, "error_code", None)
    return code in _ABSENT and code not in _REFUSED


def refused(exc: Any, what: str) -> RegistryAccessDenied | None:
    """A clear error for MLflow's 401/403 on ``what``, naming the account this process signs in as."""
    if getattr(exc, "error_code", None) not in _REFUSED:
        return None
    from fraudops.tracking import signed_in

    account = signed_in()
    who = f"MLflow account {account[0]!r}" if account else "an anonymous MLflow client (no account chosen)"
    return RegistryAccessDenied(f"{who} may not {what}: {exc}")


def _alias_listed(client: Any, name: str, alias: str) -> bool:
    """Whether ``name`` exists with ``alias`` (True when this account may not even read the model: the
    refusal is then real)."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if is_absent(exc):
            return False
        return True
    return alias in (model.aliases or {})


def version_by_alias(client: Any, name: str, alias: str) -> Any | None:
    """The model version at ``name@alias``, None when the model or the alias does not exist.

    MLflow's basic auth answers 403, not 404, to a non-admin asking for the alias of a model that does
    not exist (it cannot resolve what the alias points at, so it refuses): a 403 counts as "absent" only
    when the model (as this account may read it) has no such alias; else it is the refusal it says."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if is_absent(exc):
            return None
        if exc.error_code == "PERMISSION_DENIED" and not _alias_listed(client, name, alias):
            return None
        denied = refused(exc, f"read {name}@{alias}")
        if denied:
            raise denied from exc
        raise


def _ref(mv: Any) -> VersionRef:
    return VersionRef(str(mv.version), mv.run_id or "", dict(mv.tags or {}))


def load_model(model_uri: str) -> FraudModel:
    """A logged or registered model (``runs:/...``, ``models:/fraud-detector@champion``) as its native
    booster, whichever family it is; refused unless its signature is the feature list."""
    model, inputs = _load_uri(model_uri)
    check_signature(inputs, model_uri)
    return model


def _load_uri(model_uri: str) -> tuple[FraudModel, Sequence[str] | None]:
    import mlflow

    from fraudops.model_families import CatBoostModel, XGBoostModel

    info = mlflow.models.get_model_info(model_uri)
    inputs = info.signature.inputs.input_names() if info.signature and info.signature.inputs else None
    flavors = info.flavors
    if "xgboost" in flavors:
        import mlflow.xgboost

        return XGBoostModel(mlflow.xgboost.load_model(model_uri)), inputs
    if "catboost" in flavors:
        import mlflow.catboost

        return CatBoostModel(mlflow.catboost.load_model(model_uri)), inputs
    raise ValueError(f"{model_uri} is neither an xgboost nor a catboost model (flavors: {sorted(flavors)})")


class MlflowRegistry(ModelRegistry):
    """The MLflow model registry (the stack's server, or a local database store)."""

    def __init__(self, tracking_uri: str, model_name: str, champion_alias: str, previous_alias: str) -> None:
        super().__init__(model_name, champion_alias, previous_alias)
        self.tracking_uri = tracking_uri
        self._client: Any = None

    @classmethod
    def from_settings(
        cls, settings: Settings, tracking_uri: str | None = None, model_name: str | None = None,
        champion_alias: str | None = None,
    ) -> MlflowRegistry:  # fmt: skip
        m = settings.mlflow
        return cls(
            tracking_uri or settings.mlflow_tracking_uri,
            model_name or m.model_name,
            champion_alias or m.champion_alias,
            m.previous_alias,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def _use(self) -> None:
        # models:/ URIs and mlflow.register_model resolve through the global client
        from fraudops.tracking import use_tracking_uri

        use_tracking_uri(self.tracking_uri)

    def register(self, model_uri: str, tags: Mapping[str, str]) -> VersionRef:
        import mlflow

        self._use()
        mv = mlflow.register_model(model_uri, self.model_name, tags={k: str(v) for k, v in tags.items()})
        return VersionRef(str(mv.version), mv.run_id or "", {k: str(v) for k, v in tags.items()})

    def get(self, version: str) -> VersionRef:
        from mlflow.exceptions import MlflowException

        try:
            return _ref(self.client.get_model_version(self.model_name, str(version)))
        except MlflowException as exc:
            if is_absent(exc):
                raise NoSuchVersion(f"{self.model_name} has no version {version}") from exc
            denied = refused(exc, f"read {self.model_name} version {version}")
            if denied:
                raise denied from exc
            raise

    def find(self, tags: Mapping[str, str]) -> list[VersionRef]:
        where = " and ".join(
            [f"name = '{self.model_name}'"] + [f"tags.`{k}` = '{v}'" for k, v in tags.items()]
        )
        return sorted(
            (_ref(mv) for mv in self.client.search_model_versions(where)), key=lambda r: int(r.version)
        )

    def by_alias(self, alias: str) -> VersionRef | None:

        found = version_by_alias(self.client, self.model_name, alias)
        return _ref(found) if found is not None else None

    def _set_alias(self, alias: str, version: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.set_registered_model_alias(self.model_name, alias, str(version))
        except MlflowException as exc:
            denied = refused(exc, f"move {self.model_name}@{alias}")
            if denied:
                raise denied from exc
            raise

    def _delete_alias(self, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model_alias(self.model_name, alias)
        except MlflowException as exc:
            denied = refused(exc, f"delete {self.model_name}@{alias}")
            if denied:
                raise denied from exc
            raise

    def _load(self, version: str) -> tuple[FraudModel, Sequence[str] | None]:
        self._use()
        # a version, not the alias: the alias may move while we download
        return _load_uri(f"models:/{self.model_name}/{version}")
