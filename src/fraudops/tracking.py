"""MLflow glue: where runs go, evaluation plots, model logging (registration: :mod:`fraudops.registry`).

Works with any tracking URI: the stack's server (``http://...``, artifacts proxied to MinIO, so this
client holds no S3 keys) or a local store (``sqlite:///...``, used by the unit tests; a file store has no
model registry).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fraudops.config.model import Thresholds
from fraudops.features import FEATURE_NAMES

log = logging.getLogger(__name__)


# MLflow stores that hold a model registry: a server, or a database of its own
REGISTRY_SCHEMES: tuple[str, ...] = ("http", "https", "sqlite", "postgresql", "mysql", "mssql")
LOCAL_STORE_HELP = (
    "a tracking server (http://host:5000, the stack's by default) or a local database store, e.g. "
    "sqlite:///mlruns/mlflow.db (artifacts in a folder of your choice)"
)


class UnsupportedTrackingUri(ValueError):
    pass


def check_tracking_uri(uri: str) -> str:
    """``uri`` if MLflow can track runs and register models there, else a clear error (a ``file:`` store
    or a bare path has no model registry: MLflow refuses it with a traceback deep inside a run)."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    if scheme not in REGISTRY_SCHEMES:
        raise UnsupportedTrackingUri(
            f"unsupported MLflow tracking URI {uri!r}: "
            + ("a file store has no model registry; " if scheme in ("", "file") else "")
            + f"use {LOCAL_STORE_HELP}"
        )
    return uri


def default_artifact_location(uri: str) -> str | None:
    """Where a local sqlite store's experiments keep their artifacts: a folder next to the database
    (MLflow's own default is ./mlruns under whatever the working directory happens to be)."""
    from pathlib import Path

    if not uri.startswith("sqlite:///"):
        return None
    return str(Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / "artifacts")


def use_tracking_uri(uri: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def experiment_id(name: str, artifact_location: str | None = None) -> str:
    """The experiment's id, creating it when missing (``artifact_location`` only applies on creation;
    leave it unset against the server, whose proxied artifact root is the right default).

    Safe against a concurrent creator: the DAG's mapped training tasks start together on a fresh server,
    and whichever loses the race to create the experiment uses the winner's.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    existing = mlflow.get_experiment_by_name(name)
    if existing is None:
        try:
            return mlflow.create_experiment(name, artifact_location=artifact_location)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            existing = mlflow.get_experiment_by_name(name)
            if existing is None:  # created and deleted again in between: nothing sensible to retry
                raise
    if existing.lifecycle_stage == "deleted":
        # a deleted experiment keeps its name reserved; bring it back rather than fail every run
        mlflow.MlflowClient().restore_experiment(existing.experiment_id)
    return existing.experiment_id


# -- plots ---------------------------------------------------------------------------------------------


def _figure(width: float = 6.0, height: float = 4.5, ncols: int = 1) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and workers
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height))


def evaluation_figures(
    y: np.ndarray, scores: np.ndarray, thresholds: Thresholds, importance: Mapping[str, float]
) -> dict[str, Any]:
    """artifact file name -> matplotlib figure."""
    from sklearn.metrics import (
        average_precision_score,
        confusion_matrix,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    figures: dict[str, Any] = {}
    fig, ax = _figure()
    precision, recall, _ = precision_recall_curve(y, scores)
    ax.plot(recall, precision, label=f"AP = {average_precision_score(y, scores):.3f}")
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"fraud rate = {y.mean():.4f}")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        title="Precision-recall (test window)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.legend(loc="upper right")
    figures["pr_curve.png"] = fig

    fig, ax = _figure()
    fpr, tpr, _ = roc_curve(y, scores)
    ax.plot(fpr, tpr, label=f"AUC = {roc_auc_score(y, scores):.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test window)")
    ax.legend(loc="lower right")
    figures["roc_curve.png"] = fig

    fig, ax = _figure()
    bins = np.linspace(0, 1, 51)
    ax.hist(scores[y == 0], bins=bins, alpha=0.6, label="genuine", log=True)
    ax.hist(scores[y == 1], bins=bins, alpha=0.6, label="fraud", log=True)
    for name, value in (("review", thresholds.review), ("block", thresholds.block)):
        ax.axvline(
            value, color="black", linestyle="--" if name == "review" else "-", label=f"{name} = {value}"
        )
    ax.set(xlabel="score", ylabel="transactions (log)", title="Score distribution (test window)")
    ax.legend()
    figures["score_distribution.png"] = fig

    fig, ax = _figure(6.5, 5.0)
    ordered = sorted(importance.items(), key=lambda item: item[1])
    ax.barh([name for name, _ in ordered], [value for _, value in ordered])
    ax.set(xlabel="share of total importance", title="Feature importance")
    fig.tight_layout()
    figures["feature_importance.png"] = fig

    fig, axes = _figure(9.0, 4.0, ncols=2)
    for ax, (name, value) in zip(
        axes, (("REVIEW", thresholds.review), ("BLOCK", thresholds.block)), strict=True
    ):
        matrix = confusion_matrix(y, (scores >= value).astype(int), labels=[0, 1])
        ax.imshow(matrix, cmap="Blues")
        for (r, c), count in np.ndenumerate(matrix):
            ax.text(c, r, f"{count:,}", ha="center", va="center")
        ax.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=["pass", "flag"],
            yticklabels=["genuine", "fraud"],
            title=f"{name} (score >= {value})",
        )
    fig.tight_layout()
    figures["confusion_matrices.png"] = fig
    return figures


def log_figures(figures: Mapping[str, Any], folder: str = "plots") -> None:
    import matplotlib.pyplot as plt
    import mlflow

    for name, fig in figures.items():
        mlflow.log_figure(fig, f"{folder}/{name}")
        plt.close(fig)


# -- model ---------------------------------------------------------------------------------------------


def model_signature(X_example: pd.DataFrame, scores: np.ndarray) -> Any:
    from mlflow.models import infer_signature

    return infer_signature(X_example, scores)


def example_frame(X: np.ndarray, rows: int = 5, names: tuple[str, ...] = FEATURE_NAMES) -> pd.DataFrame:
    return pd.DataFrame(X[:rows], columns=list(names))


def log_snapshot_inputs(snapshot: str, fingerprint: str, schema: Any) -> None:
    """Record the data snapshot as the run's training and test input (metadata only: MLflow's pandas
    dataset would profile the whole frame, ~25 s for the default data set)."""
    import warnings

    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.exceptions import MlflowException

    with warnings.catch_warnings():
        # a local path matches several source types; MLflow picks the right one and says so
        warnings.simplefilter("ignore", UserWarning)
        try:
            source = resolve_dataset_source(snapshot)
        except MlflowException:
            # not a path or URI MLflow knows (e.g. "simulated:default"): the run's tags still carry it
            log.info(
                "data snapshot %r is not a dataset source MLflow can resolve; recorded as a tag only",
                snapshot,
            )
            return
    for context in ("training", "testing"):
        mlflow.log_input(
            MetaDataset(source, name=context, digest=fingerprint, schema=schema), context=context
        )


# -- accounts ------------------------------------------------------------------------------------------

# the stack's MLflow accounts (basic auth): account -> the secrets keys of its user name and password.
# `admin` is for people in the UI and the init step; `pipeline` writes runs and the registry; `reader`
# reads only (scorer, console, exporters, Prometheus).
ACCOUNTS: dict[str, tuple[str, str]] = {
    "admin": ("MLFLOW_ADMIN_USER", "MLFLOW_ADMIN_PASSWORD"),
    "pipeline": ("MLFLOW_PIPELINE_USER", "MLFLOW_PIPELINE_PASSWORD"),
    "reader": ("MLFLOW_READER_USER", "MLFLOW_READER_PASSWORD"),
}

# the account this process signs in with (None: anonymous, e.g. a local sqlite store)
_signed_in: tuple[str, str] | None = None


def credentials(secrets: Mapping[str, str], account: str) -> tuple[str, str] | None:
    """(user, password) of ``account`` from the secrets, None when they hold none (no auth configured,
    e.g. a unit test's local store)."""
    if account not in ACCOUNTS:
        raise KeyError(f"no MLflow account {account!r}; one of {', '.join(ACCOUNTS)}")
    user_key, password_key = ACCOUNTS[account]
    user, password = secrets.get(user_key), secrets.get(password_key)
    return (user, password) if user and password else None


def use_account(secrets: Mapping[str, str], account: str) -> str | None:
    """Sign every MLflow request of this process in as ``account`` (the header plugin
    :mod:`fraudops.mlflow_headers`, so no password reaches an environment variable or a command line).
    Returns the user name, None when the secrets hold no such account (requests stay anonymous)."""
    global _signed_in
    _signed_in = credentials(secrets, account)
    return _signed_in[0] if _signed_in else None


def signed_in() -> tuple[str, str] | None:
    """(user, password) of the account this process signs in with, None when anonymous."""
    return _signed_in


def basic_authorization(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
