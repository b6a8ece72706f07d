"""What the scorer's Prometheus metrics cost a micro-batch: recording the outputs (decisions, dead letters,
latencies) and the batch (counts, stage times) of a 10,000-row micro-batch, the scorer's largest
(scorer.max_offsets_per_trigger). Prints the mean over many batches. No services needed.
Usage: .venv/bin/python scripts/bench_metrics.py [--rows 10000] [--batches 500]"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from fraudops.monitoring.metrics import ScorerMetrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    decisions = pd.Series(rng.choice(["APPROVE", "REVIEW", "BLOCK"], args.rows, p=[0.98, 0.015, 0.005]))
    reasons = pd.Series([f"unreadable JSON: record {i}" for i in range(20)])
    latencies = rng.exponential(0.5, args.rows)
    timings = {
        "read": 120.0,
        "parse": 80.0,
        "features": 150.0,
        "model": 40.0,
        "postgres": 300.0,
        "kafka": 90.0,
    }
    metrics = ScorerMetrics()
    started = time.perf_counter()
    for _ in range(args.batches):
        metrics.record_outputs(decisions, reasons, latencies)
        metrics.record_batch(args.rows, args.rows, timings, "fraud-detector", "3")
    per_batch_ms = (time.perf_counter() - started) / args.batches * 1000
    print(
        f"metrics of a {args.rows:,}-row micro-batch: {per_batch_ms:.2f} ms "
        f"(mean of {args.batches}; load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
