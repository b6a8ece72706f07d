"""Benchmark of the model core on the default data set (``make bench-model``).

Prints, as a Markdown table for BENCHMARKS.md: generation time of the default data set, feature build
time, training time per model family, out-of-time test metrics on the last weeks, batch scoring rows/s and
single-row p50/p99 latency of the native booster per family.

Runs are tracked in a throw-away local MLflow store unless ``--tracking-uri`` names another (e.g. the
stack's server, to see the runs in its UI).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

from bench_machine import cpu_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI [default: a temporary sqlite store]")
    parser.add_argument("--families", default="xgboost,catboost", help="comma-separated [default: both]")
    parser.add_argument("--latency-rows", type=int, default=2000, help="rows scored one at a time")
    args = parser.parse_args()

    warnings.simplefilter("ignore")  # MLflow's advisory warnings would drown the table
    import pandas as pd

    from fraudops.config.settings import load_settings
    from fraudops.features import FEATURE_NAMES, build_features
    from fraudops.simulator import simulate
    from fraudops.train import train_model

    settings = load_settings()
    training = settings.training.model_copy(update={"latency_rows": args.latency_rows})
    rows: list[tuple[str, str]] = []

    started = time.perf_counter()
    transactions = simulate(settings.simulator, progress=True)
    generation_s = time.perf_counter() - started
    fraud_rate = transactions["tx_fraud"].mean()
    rows.append(
        (
            "generation of the default data set",
            f"{generation_s:.1f} s ({len(transactions):,} transactions, {fraud_rate:.2%} fraud)",
        )
    )
    started = time.perf_counter()
    features = build_features(transactions)
    rows.append((f"feature build ({len(FEATURE_NAMES)} features)", f"{time.perf_counter() - started:.1f} s"))

    with tempfile.TemporaryDirectory() as scratch:
        uri = args.tracking_uri or f"sqlite:///{Path(scratch) / 'mlflow.db'}"
        artifacts = None if args.tracking_uri else str(Path(scratch) / "artifacts")
        for family in args.families.split(","):
            started = time.perf_counter()
            result = train_model(
                features,
                model_settings=settings.model,
                training=training,
                tracking_uri=uri,
                model_name=settings.mlflow.model_name,
                family=family,  # type: ignore[arg-type]
                data_snapshot="simulated:default",
                artifact_location=artifacts,
            )
            total_s = time.perf_counter() - started
            m, w = result.metrics, result.windows
            rows += [
                (
                    f"{family}: training",
                    f"{m['train_seconds']:.1f} s fit ({result.params['best_iteration']} trees/iterations, "
                    f"{result.params['train_rows']:,} rows), "
                    f"{total_s:.1f} s with evaluation and MLflow logging",
                ),
                (
                    f"{family}: out-of-time test, {w.test_start.date()} to "
                    f"{(w.test_end - pd.Timedelta(days=1)).date()}",
                    f"AUC ROC {m['auc_roc']:.3f}, AP {m['average_precision']:.3f}, "
                    f"card precision@100 {m['card_precision_at_100']:.3f}",
                ),
                (
                    f"{family}: protocol, {m['protocol_weeks']:.0f} weekly test sets",
                    f"AUC ROC {m['protocol_auc_roc_mean']:.3f} ± {m['protocol_auc_roc_std']:.3f}, "
                    f"AP {m['protocol_average_precision_mean']:.3f} ± "
                    f"{m['protocol_average_precision_std']:.3f}, "
                    f"card precision@100 {m['protocol_card_precision_at_100_mean']:.3f} ± "
                    f"{m['protocol_card_precision_at_100_std']:.3f}",
                ),
                (
                    f"{family}: thresholds",
                    f"REVIEW {settings.model.thresholds.review}: precision {m['precision_at_review']:.3f} "
                    f"recall {m['recall_at_review']:.3f}; BLOCK {settings.model.thresholds.block}: precision "
                    f"{m['precision_at_block']:.3f} recall {m['recall_at_block']:.3f}",
                ),
                (
                    f"{family}: scoring (native)",
                    f"batch {m['batch_rows_per_s']:,.0f} rows/s; "
                    f"single row (one thread) CPU p50 {m['single_row_cpu_p50_ms']:.3f} ms, "
                    f"p99 {m['single_row_cpu_p99_ms']:.3f} ms; wall p99 {m['single_row_wall_p99_ms']:.3f} ms",
                ),
            ]

    versions = ", ".join(
        f"{name} {metadata.version(dist)}"
        for name, dist in (("xgboost", "xgboost-cpu"), ("catboost", "catboost"), ("mlflow", "mlflow"))
    )
    print()
    print(f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, {versions}")
    print(f"Load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| step | result |")
    print("| --- | --- |")
    for step, result_text in rows:
        print(f"| {step} | {result_text} |")


if __name__ == "__main__":
    main()
