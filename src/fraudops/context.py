"""What an entry point hands the package: the settings and the secrets, loaded once, and the external
systems built from them (the model registry, the data lake, the audit log, the reload signal).

An entry point (a CLI command, a DAG task, the scorer's job) calls :meth:`Context.load` once and passes
the context down; nothing below it reads the settings or the secrets again. Unit tests build a context
with in-memory implementations of the same interfaces (:meth:`Context.of` takes them as overrides).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fraudops.config.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from fraudops.audit import AuditLog
    from fraudops.lake import Lake
    from fraudops.registry import ModelRegistry
    from fraudops.signals import ModelUpdate


@dataclass(frozen=True)
class Context:
    settings: Settings
    secrets: Mapping[str, str]
    registry: ModelRegistry
    lake: Lake
    audit: AuditLog
    # tells the scorers a new champion is in force (a `model_updates` event)
    publish: Callable[[ModelUpdate], Any]

    @classmethod
    def load(cls, mlflow_account: str = "pipeline") -> Context:
        """The settings and the secrets, read once."""
        from fraudops.config.settings import load_settings
        from fraudops.secrets import load_secrets

        settings = load_settings()
        return cls.of(settings, load_secrets(settings.env_dir), mlflow_account=mlflow_account)

    @classmethod
    def of(
        cls, settings: Settings, secrets: Mapping[str, str], mlflow_account: str = "pipeline", **parts: Any
    ) -> Context:
        """The product's registry, lake, audit log and signal, unless ``parts`` names others. MLflow is
        signed in as ``mlflow_account`` (:data:`fraudops.tracking.ACCOUNTS`): the retraining pipeline's
        writer by default, what every user of a context so far is."""
        from fraudops.audit import PostgresAudit
        from fraudops.lake import S3Lake
        from fraudops.registry import MlflowRegistry
        from fraudops.tracking import use_account

        use_account(secrets, mlflow_account)

        def publish(update: ModelUpdate) -> None:
            from fraudops.signals import publish_model_update

            publish_model_update(settings.kafka_bootstrap_servers, update)

        defaults: dict[str, Callable[[], Any]] = {
            "registry": lambda: MlflowRegistry.from_settings(settings),
            "lake": lambda: S3Lake(settings, secrets),
            "audit": lambda: PostgresAudit(settings, secrets),
            "publish": lambda: publish,
        }
        unknown = set(parts) - set(defaults)
        if unknown:
            raise TypeError(f"unknown context parts: {sorted(unknown)}")
        built = {name: parts[name] if name in parts else make() for name, make in defaults.items()}
        return cls(settings, secrets, **built)

    @property
    def dsn(self) -> str:
        """The fraud database, logged in as the retraining pipeline's role (reads transactions and labels,
        writes the audit log; :func:`fraudops.stack.postgres.fraud_grants`)."""
        from fraudops.connections import pipeline_dsn

        return pipeline_dsn(self.settings, self.secrets)

    @property
    def producer_dsn(self) -> str:
        """The fraud database, logged in as the producer's role (appends transactions and labels): what
        loads history."""
        from fraudops.connections import producer_dsn

        return producer_dsn(self.settings, self.secrets)

    @property
    def model_name(self) -> str:
        return self.registry.model_name

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.settings.mlflow_tracking_uri}/#/experiments/{experiment_id}/runs/{run_id}"
