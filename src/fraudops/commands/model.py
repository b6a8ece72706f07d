"""Model-core commands: simulate, import, build features, train, evaluate.

Each command is a thin shell over a plain function of the package (the DAG calls the same functions);
heavy libraries are imported inside the commands so ``fraudops --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from fraudops.config.settings import Settings

DEFAULT_TRANSACTIONS = Path("data") / "transactions.parquet"
DEFAULT_FEATURES = Path("data") / "features.parquet"

data_option = click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=DEFAULT_FEATURES,
    show_default=True,
    help="Features (or transactions) Parquet file.",
)


def _settings() -> Settings:
    from fraudops.config.settings import load_settings

    return load_settings()


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


def _producer_dsn(settings: Settings, dsn: str | None) -> str:
    """``dsn``, or the stack's fraud database as the producer's role (it appends transactions and labels)."""
    if dsn:
        return dsn
    from fraudops.connections import producer_dsn
    from fraudops.secrets import load_secrets

    return producer_dsn(settings, load_secrets(settings.env_dir))


def _read_features(path: Path) -> pd.DataFrame:
    """A features Parquet file, or a transactions file whose features are built on the fly."""
    from fraudops.features import FEATURE_NAMES, build_features
    from fraudops.schema import read_parquet

    frame = read_parquet(path)
    if all(name in frame.columns for name in FEATURE_NAMES):
        return frame
    return build_features(frame)


@click.command("simulate")
@click.option(
    "--out", type=click.Path(path_type=Path), help=f"Parquet file [default: {DEFAULT_TRANSACTIONS}]"
)
@click.option(
    "--postgres", is_flag=True, help="Also write transactions_raw and fraud_labels in the fraud db."
)
@click.option("--dsn", help="Postgres DSN [default: the stack's fraud database, as the producer's role].")
@click.option("--customers", type=int, help="Number of customers [default: simulator.n_customers].")
@click.option("--terminals", type=int, help="Number of terminals [default: simulator.n_terminals].")
@click.option("--days", type=int, help="Number of days [default: simulator.n_days].")
@click.option("--start", "start_date", type=click.DateTime(["%Y-%m-%d"]), help="First day of the world.")
@click.option("--seed", type=int, help="Random seed [default: simulator.seed].")
@click.option("--label-delay-days", type=float, help="Delay of fraud_labels [default: the label delay].")
def simulate_command(
    out: Path | None,
    postgres: bool,
    dsn: str | None,
    customers: int | None,
    terminals: int | None,
    days: int | None,
    start_date: datetime | None,
    seed: int | None,
    label_delay_days: float | None,
) -> None:
    """Generate simulated transactions with fraud labels (to Parquet and/or Postgres)."""
    import time

    from fraudops.config.model import SimulatorSettings

    settings = _settings()
    overrides = {
        "n_customers": customers,
        "n_terminals": terminals,
        "n_days": days,
        "start_date": start_date.date() if start_date else None,
        "seed": seed,
    }
    world = SimulatorSettings.model_validate(
        {**settings.simulator.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    )
    started = time.perf_counter()
    if postgres:
        from fraudops.history import load_simulated_history
        from fraudops.labels import DEFAULT_DELAY

        delay = DEFAULT_DELAY if label_delay_days is None else timedelta(days=label_delay_days)
        frames = []
        new_tx, new_labels = load_simulated_history(
            world,
            _producer_dsn(settings, dsn),
            delay=delay,
            progress=True,
            on_frame=frames.append if out is not None else None,
        )
        click.echo(f"postgres: {new_tx:,} new transactions, {new_labels:,} new labels")
        if out is not None:
            import pandas as pd

            from fraudops.simulator import write_parquet

            write_parquet(pd.concat(frames, ignore_index=True), str(settings.path(out)))
    else:
        from fraudops.simulator import simulate, write_parquet

        frame = simulate(world, progress=True)
        path = write_parquet(frame, str(settings.path(out or DEFAULT_TRANSACTIONS)))
        click.echo(f"{len(frame):,} transactions, {frame['tx_fraud'].mean():.3%} fraud -> {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s")


@click.command("simulate-stream")
@click.option("--start", type=click.DateTime(), required=True, help="Continue the world from this time.")
@click.option("--limit", type=int, default=100, show_default=True, help="Events to emit (0 = endless).")
@click.option("--rate", type=float, help="Events per second [default: as fast as possible].")
@click.option(
    "--clock", type=click.Choice(["simulated", "wallclock"]), default="simulated", show_default=True
)
def simulate_stream_command(start: datetime, limit: int, rate: float | None, clock: str) -> None:
    """Print simulated transaction events as JSON lines (what the Kafka producer publishes)."""
    import itertools

    from fraudops.schema import event_to_json
    from fraudops.simulator import paced, stream_transactions

    settings = _settings()
    items = stream_transactions(settings.simulator, start, clock=clock)  # type: ignore[arg-type]
    if limit:
        items = itertools.islice(items, limit)
    if rate:
        items = paced(items, rate)
    for item in items:
        sys.stdout.write(event_to_json(item.event) + "\n")
    sys.stdout.flush()


@click.command("import-transactions")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_TRANSACTIONS, show_default=True)
@click.option("--map", "mappings", multiple=True, metavar="SOURCE=FIELD", help="Rename a column; repeatable.")
@click.option(
    "--format", "file_format", type=click.Choice(["csv", "parquet"]), help="[default: by extension]"
)
def import_transactions_command(
    source: Path, out: Path, mappings: tuple[str, ...], file_format: str | None
) -> None:
    """Load outside transactions (CSV/Parquet) into the schema's Parquet layout."""
    from fraudops.importer import import_transactions
    from fraudops.simulator import write_parquet

    mapping = {}
    for item in mappings:
        src, sep, field = item.partition("=")
        if not sep or not src or not field:
            raise click.BadParameter(f"expected SOURCE=FIELD, got {item!r}", param_hint="--map")
        mapping[src] = field
    try:
        frame = import_transactions(source, mapping, file_format=file_format)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    path = write_parquet(frame, str(_settings().path(out)))
    labels = f", {frame['tx_fraud'].mean():.3%} fraud" if "tx_fraud" in frame.columns else ", no labels"
    click.echo(f"{len(frame):,} transactions{labels} -> {path}")


@click.command("build-features")
@click.option(
    "--transactions", type=click.Path(path_type=Path), default=DEFAULT_TRANSACTIONS, show_default=True
)
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_FEATURES, show_default=True)
def build_features_command(transactions: Path, out: Path) -> None:
    """Compute the point-in-time features of a transactions Parquet file."""
    import time

    from fraudops.features import build_features
    from fraudops.schema import read_parquet
    from fraudops.simulator import write_parquet

    settings = _settings()
    frame = read_parquet(settings.path(transactions))
    started = time.perf_counter()
    features = build_features(frame)
    elapsed = time.perf_counter() - started
    path = write_parquet(features, str(settings.path(out)))
    click.echo(f"{len(features):,} rows x {features.shape[1]} columns in {elapsed:.1f} s -> {path}")


def _tracking(
    settings: Settings, tracking_uri: str | None, artifacts: Path | None, account: str = "reader"
) -> tuple[str, str | None]:
    """The checked tracking URI and the artifact folder of experiments it creates; MLflow signed in as
    ``account`` when the secrets were generated (a local store needs no login)."""
    from fraudops.secrets import mounted_secrets
    from fraudops.tracking import (
        UnsupportedTrackingUri,
        check_tracking_uri,
        default_artifact_location,
        use_account,
    )

    uri = tracking_uri or settings.mlflow_tracking_uri
    try:
        check_tracking_uri(uri)
    except UnsupportedTrackingUri as exc:
        raise click.BadParameter(str(exc), param_hint="--tracking-uri") from exc
    use_account(mounted_secrets(settings.env_dir), account)
    return uri, str(artifacts.resolve()) if artifacts else default_artifact_location(uri)


tracking_option = click.option(
    "--tracking-uri",
    help="MLflow tracking URI: a tracking server (http://..., default: the stack's) or a local database, "
    "e.g. sqlite:///mlruns/mlflow.db. A file store (file:..., a bare path) has no model registry and is "
    "refused.",
)
artifacts_option = click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    help="Artifact folder of a new experiment in a local store [default: artifacts/ next to the sqlite "
    "database; a server keeps its own].",
)


def _day(value: datetime | None) -> pd.Timestamp | None:
    import pandas as pd

    return pd.Timestamp(value) if value is not None else None


@click.command("train")
@click.option("--family", type=click.Choice(["xgboost", "catboost", "all"]), help="[default: model.family]")
@data_option
@click.option("--snapshot", help="Data snapshot reference recorded with the run [default: the --data path].")
@click.option(
    "--cutoff",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Train as the DAG would at this time (UTC): only the transactions before it and the labels known "
    "then (at least the label delay old); the split is counted back from the cutoff minus the label delay. "
    "[default: the split ends at the end of the data, every label used]",
)
@tracking_option
@artifacts_option
@click.option("--search/--no-search", default=None, help="Small hyperparameter search [default: config].")
@click.option(
    "--register/--no-register",
    default=False,
    show_default=True,
    help="Register the model as a new version of mlflow.model_name in the tracking store's registry.",
)
def train_command(
    family: str | None,
    data: Path,
    snapshot: str | None,
    cutoff: datetime | None,
    tracking_uri: str | None,
    artifacts: Path | None,
    search: bool | None,
    register: bool,
) -> None:
    """Train, evaluate out of time and log to MLflow; register a version of the model with --register."""
    from fraudops.config.model import FAMILIES
    from fraudops.features import build_features
    from fraudops.schema import read_parquet
    from fraudops.train import known_at, train_at_cutoff, train_model

    settings = _settings()
    # logs runs and registers versions: the pipeline's account
    uri, artifact_location = _tracking(settings, tracking_uri, artifacts, account="pipeline")
    path = settings.path(data)
    at = _day(cutoff)
    # with a cutoff, the DAG's path: the data as known at the cutoff, features built on it
    features = _read_features(path) if at is None else build_features(known_at(read_parquet(path), at))
    training = settings.training
    if search is not None:
        training = training.model_copy(
            update={"search": training.search.model_copy(update={"enabled": search})}
        )
    families = FAMILIES if family == "all" else (family or settings.model.family,)
    from fraudops.registry import MlflowRegistry

    registry = MlflowRegistry.from_settings(settings, tracking_uri=uri) if register else None
    summary = []
    for fam in families:
        options: dict[str, Any] = dict(
            model_settings=settings.model,
            training=training,
            tracking_uri=uri,
            registry=registry,
            family=fam,
            data_snapshot=snapshot or str(path),
            artifact_location=artifact_location,
        )
        result = train_model(features, **options) if at is None else train_at_cutoff(features, at, **options)
        w = result.windows
        summary.append(
            {
                "family": result.family,
                "run_id": result.run_id,
                "model_version": result.model_version,
                "model_uri": result.model_uri,
                "test_window": _window_text(w.test_start, w.test_end),
                "metrics": {k: round(v, 5) for k, v in result.metrics.items()},
            }
        )
    _echo_json(summary)


def _window_text(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """``[start, end)`` at day boundaries, printed as its first and last day, both included."""
    import pandas as pd

    last = end - pd.Timedelta(days=1)
    return f"{start.date()} to {last.date()} (both included, {(end - start).days} days)"


@click.command("evaluate")
@click.option(
    "--model-uri", required=True, help="e.g. models:/fraud-detector@champion or models:/fraud-detector/3"
)
@data_option
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of the window, included [default: --end minus the window length].",
)
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last day of the window, included [default: the last day of the data].",
)
@click.option(
    "--test-days",
    type=int,
    help="Window length in days when --start is not given [default: training.split.test_days].",
)
@tracking_option
def evaluate_command(
    model_uri: str,
    data: Path,
    start: datetime | None,
    end: datetime | None,
    test_days: int | None,
    tracking_uri: str | None,
) -> None:
    """Evaluate a logged or registered model on an out-of-time window, by the simple metrics and the
    field's protocol (weekly test sets, known cards removed); prints the metrics."""
    import pandas as pd

    from fraudops.evaluation import ProtocolWindow, evaluate
    from fraudops.features import LABEL_DELAY_DAYS
    from fraudops.registry import load_model
    from fraudops.tracking import use_tracking_uri
    from fraudops.train import labelled

    settings = _settings()
    uri, _ = _tracking(settings, tracking_uri, None)
    use_tracking_uri(uri)
    features = labelled(_read_features(settings.path(data)))
    last_day = _day(end) or features["tx_datetime"].max().floor("D")
    window_end = last_day + pd.Timedelta(days=1)
    window_start = _day(start) or window_end - pd.Timedelta(
        days=test_days or settings.training.split.test_days
    )
    if window_start >= window_end:
        raise click.BadParameter(f"--start {window_start.date()} is after --end {last_day.date()}")
    window = _window_text(window_start, window_end)
    times = features["tx_datetime"]
    test = features[(times >= window_start) & (times < window_end)]
    if test.empty:
        raise click.ClickException(f"no labelled transactions from {window}")
    result = evaluate(
        load_model(model_uri),
        test,
        settings.model.thresholds,
        latency_rows=settings.training.latency_rows,
        protocol=ProtocolWindow(window_start, window_end, features, LABEL_DELAY_DAYS),
    )
    _echo_json(
        {
            "model_uri": model_uri,
            "window": window,
            "metrics": {k: round(v, 5) for k, v in result.metrics.items()},
        }
    )


def score_file(
    source: Path, out: Path, model_uri: str, tracking_uri: str | None, settings: Settings
) -> pd.DataFrame:
    """Per-transaction scores and decisions of a transactions or features file, written to ``out``."""
    from fraudops.decisions import scored_frame
    from fraudops.features import feature_matrix
    from fraudops.registry import load_model
    from fraudops.simulator import write_parquet
    from fraudops.tracking import use_tracking_uri

    uri, _ = _tracking(settings, tracking_uri, None)
    use_tracking_uri(uri)
    features = _read_features(settings.path(source))
    model = load_model(model_uri)
    frame = scored_frame(
        features, model.predict(feature_matrix(features, model.feature_names)), settings.model.thresholds
    )
    write_parquet(frame, str(settings.path(out)))
    return frame
