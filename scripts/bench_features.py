"""Feature ablation on the default data set (``make bench-features``).

Simulates the default data set, builds every feature once, then trains each model family on the
baseline 15 features, on the whole model input vector, and on the vector minus each added feature
(``--add-one``: also the baseline plus each), under the field's protocol (four weekly test sets). Every
run is logged to MLflow (a throw-away sqlite store unless ``--tracking-uri``/``--artifacts`` say
otherwise). Prints the machine, its load and a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

from bench_machine import cpu_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI [default: a temporary sqlite store]")
    parser.add_argument("--artifacts", help="artifact folder of a local store [default: temporary]")
    parser.add_argument("--families", default="xgboost,catboost", help="comma-separated [default: both]")
    parser.add_argument("--candidates", help="comma-separated added features [default: all beyond the 15]")
    parser.add_argument("--add-one", action="store_true", help="also the baseline plus each candidate")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("fraudops.ablation").setLevel(logging.INFO)
    warnings.simplefilter("ignore")  # MLflow's advisory warnings would drown the table
    from fraudops.ablation import ablation_table, earns_its_keep, feature_sets, run_ablation
    from fraudops.config.settings import load_settings
    from fraudops.features import build_features
    from fraudops.simulator import simulate

    settings = load_settings()
    # the ablation compares quality; a short latency pass keeps each run's evaluation quick
    training = settings.training.model_copy(
        update={"latency_rows": 200, "experiment": "fraud-detector-feature-ablation"}
    )
    started = time.perf_counter()
    transactions = simulate(settings.simulator, progress=False)
    features = build_features(transactions)
    print(f"default data set and features: {len(features):,} rows in {time.perf_counter() - started:.1f} s")
    sets = feature_sets(args.candidates.split(",") if args.candidates else None, add_one=args.add_one)
    with tempfile.TemporaryDirectory() as scratch:
        uri = args.tracking_uri or f"sqlite:///{Path(scratch) / 'mlflow.db'}"
        artifacts = args.artifacts or (None if args.tracking_uri else str(Path(scratch) / "artifacts"))
        started = time.perf_counter()
        runs = run_ablation(
            features,
            sets,
            families=args.families.split(","),  # type: ignore[arg-type]
            model_settings=settings.model,
            training=training,
            tracking_uri=uri,
            artifact_location=artifacts,
            data_snapshot="simulated:default",
        )
        elapsed = time.perf_counter() - started
    print()
    print(f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}")
    print(
        f"{len(runs)} runs in {elapsed:.0f} s; load average at the end: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print()
    print(ablation_table(runs))
    print()
    for name, keep in earns_its_keep(runs).items():
        print(
            f"{name}: {'keep' if keep else 'drop'} "
            "(keep = dropping it from all lowers the protocol AP in every family)"
        )


if __name__ == "__main__":
    main()
