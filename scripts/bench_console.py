"""Benchmark of the analyst console's queries on real volumes (`make bench-console`, the stack up).

Loads --rows scored transactions (default 3,000,000; ~2 % alerts, a share of them labelled) into a scratch
schema of the stack's ``fraud`` database, built from the same DDL and indexes as the real tables
(fraudops.fraud_db.TABLES), then times the console's own query functions (fraudops.console.queries) on
it: search by transaction id, the alert list unfiltered and with each filter, a deep page. Prints the
median, p95 and max of each; drops the schema at the end (--keep leaves it). The real tables are never
touched.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg2

from fraudops import fraud_db
from fraudops.config.settings import load_settings
from fraudops.console import queries
from fraudops.features import FEATURE_NAMES
from fraudops.secrets import load_secrets

SCHEMA = "bench_console"
TABLES = ("transactions_with_score", "fraud_alerts", "fraud_labels")
START = datetime(2026, 1, 1)


def _load(conn, rows: int, customers: int, terminals: int, days: int) -> None:
    features = ", ".join(f"'{name}', round((random() * 10)::numeric, 4)" for name in FEATURE_NAMES)
    seconds = days * 86_400
    with conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SCHEMA}")
        cur.execute(f"SET search_path TO {SCHEMA}")
        for table in TABLES:
            cur.execute(fraud_db.TABLES[table])
        # event times spread over `days`; scores mostly low, ~2 % at or above REVIEW (0.5), a third of
        # those BLOCK, as the platform sees them
        cur.execute(
            f"""
            INSERT INTO transactions_with_score
            SELECT 'bench-' || g,
                   %(start)s + make_interval(secs => (g::double precision * {seconds} / %(rows)s)),
                   (hashint4(g) & 2147483647) %% %(customers)s,
                   (hashint4(g + 7) & 2147483647) %% %(terminals)s,
                   round((random() * 200)::numeric, 2), s,
                   CASE WHEN s >= 0.9 THEN 'BLOCK' WHEN s >= 0.5 THEN 'REVIEW' ELSE 'APPROVE' END,
                   'fraud-detector', (1 + g * 3 / %(rows)s)::text, jsonb_build_object({features}),
                   50 + random() * 400,
                   now() - make_interval(secs => ((%(rows)s - g)::double precision * 86400 / %(rows)s))
            FROM (SELECT g, CASE WHEN random() < 0.02 THEN 0.5 + random() * 0.5 ELSE random() * 0.49 END AS s
                  FROM generate_series(1, %(rows)s) g) x
            """,
            {"start": START, "rows": rows, "customers": customers, "terminals": terminals},
        )
        cur.execute(
            "INSERT INTO fraud_alerts (transaction_id, tx_datetime, customer_id, terminal_id, tx_amount,"
            " score, decision, model_name, model_version) SELECT transaction_id, tx_datetime, customer_id,"
            " terminal_id, tx_amount, score, decision, model_name, model_version FROM transactions_with_score"
            " WHERE decision <> 'APPROVE'"
        )
        cur.execute(
            "INSERT INTO fraud_labels (transaction_id, tx_fraud, available_at, source)"
            " SELECT transaction_id, (score > 0.7)::int, tx_datetime + interval '7 days', 'simulator'"
            " FROM transactions_with_score WHERE random() < 0.5"
        )
        for table in TABLES:
            cur.execute(f"ANALYZE {table}")
    conn.commit()


def _timed(run: Callable[[], object], repeat: int) -> list[float]:
    run()  # the first call plans and warms the cache, as a console that has been up a while has it
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="leave the scratch schema in place")
    args = parser.parse_args()
    settings = load_settings()
    dsn = fraud_db.fraud_dsn(settings, load_secrets(settings.env_dir))
    customers, terminals, days = 5_000, 10_000, 183
    conn = psycopg2.connect(dsn)
    try:
        started = time.perf_counter()
        _load(conn, args.rows, customers, terminals, days)
        loaded_s = time.perf_counter() - started
        with conn.cursor() as cur:
            cur.execute(f"SET search_path TO {SCHEMA}")
            cur.execute("SELECT count(*) FROM transactions_with_score")
            n_scored = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM fraud_alerts")
            n_alerts = cur.fetchone()[0]
            cur.execute(
                f"SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c"
                f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{SCHEMA}'"
                " AND c.relkind = 'r'"
            )
            size = cur.fetchone()[0]
        conn.commit()
        print(
            f"loaded {n_scored:,} scored transactions, {n_alerts:,} alerts in {loaded_s:.0f} s ({size} with "
            f"indexes); PostgreSQL {conn.server_version}, {os.cpu_count()} cores"
        )
        # the console's queries name the tables unqualified: on this session they resolve to the scratch
        conn.close()
        conn = psycopg2.connect(dsn, options=f"-c search_path={SCHEMA}")
        rng = random.Random(1)
        end = START + timedelta(days=days)
        cases: dict[str, Callable[[], object]] = {
            "search by id (random ids)": lambda: queries.find_transaction(
                conn, f"bench-{rng.randint(1, args.rows)}"
            ),
            "search by id (unknown id)": lambda: queries.find_transaction(conn, "bench-none"),
            "alerts, no filter, page 1": lambda: queries.list_alerts(conn, queries.AlertFilter()),
            "alerts, no filter, page 20": lambda: queries.list_alerts(conn, queries.AlertFilter(), page=19),
            "alerts, BLOCK only": lambda: queries.list_alerts(
                conn, queries.AlertFilter(decisions=("BLOCK",))
            ),
            "alerts, one customer": lambda: queries.list_alerts(
                conn, queries.AlertFilter(customer_id=rng.randrange(customers))
            ),
            "alerts, one terminal": lambda: queries.list_alerts(
                conn, queries.AlertFilter(terminal_id=rng.randrange(terminals))
            ),
            "alerts, amount 150-200": lambda: queries.list_alerts(
                conn, queries.AlertFilter(min_amount=150, max_amount=200)
            ),
            "alerts, one day a month back": lambda: queries.list_alerts(
                conn, queries.AlertFilter(since=end - timedelta(days=31), until=end - timedelta(days=30))
            ),
            "alerts, open status, REVIEW": lambda: queries.list_alerts(
                conn, queries.AlertFilter(decisions=("REVIEW",), statuses=("open",))
            ),
            # the Monitoring page: scored_at spreads the rows over the last day, so an hour holds ~125,000
            "charts: decision counts, last hour": lambda: queries.decision_counts(
                conn, datetime.now(UTC) - timedelta(hours=1), "minute"
            ),
            "charts: score histogram, last hour": lambda: queries.score_histogram(
                conn, datetime.now(UTC) - timedelta(hours=1)
            ),
        }
        print(f"{'query':<36} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  ({args.repeat} runs each)")
        for name, run in cases.items():
            times = sorted(_timed(run, args.repeat))
            p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
            print(f"{name:<36} {statistics.median(times):>10.2f} {p95:>8.2f} {times[-1]:>8.2f}")
    finally:
        if not args.keep:
            with conn.cursor() as cur:
                cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            conn.commit()
        conn.close()


if __name__ == "__main__":
    main()
