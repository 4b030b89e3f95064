"""What the health page costs as sync_log grows: its queries and its rendering, timed.

    .venv/bin/python bench/health_page.py [--runs 1000 10000]

For each size: a fresh schema, migrated; `runs` runs of every entity written into sync_log
with COPY (a `started` and an outcome row per entity, one failure in 50, a run summary:
10 000 runs is 290 000 rows, about a year of hourly runs); then `health_snapshot` five times
and `render_html` once. Uses LIGHTSPEED_TEST_DSN when set, else a throwaway PostgreSQL.
Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import psycopg  # noqa: E402
from lightspeed_pipeline import entities as reg  # noqa: E402
from lightspeed_pipeline.health import health_snapshot  # noqa: E402
from lightspeed_pipeline.ui import render_html  # noqa: E402
from lightspeed_pipeline.warehouse import DbSettings, Warehouse  # noqa: E402
from lightspeed_pipeline.warehouse.migrations import apply_migrations  # noqa: E402


def fill(conn: psycopg.Connection, schema: str, runs: int) -> int:
    with (
        conn.cursor() as cur,
        cur.copy(
            f'COPY "{schema}".sync_log (timestamp, entity_type, action, status, duration_seconds, records_processed,'
            " metadata) FROM STDIN"
        ) as copy,
    ):
        for r in range(runs):
            run_id = f"scheduled__{r:06d}"
            for name in reg.NAMES:
                meta = {"run_id": run_id, "records": 10, "duration_s": 0.5, "requests": 2, "try_number": 1}
                copy.write_row(("2026-01-01 00:00:00+00", name, "incremental_sync", "started", None, 0,
                                json.dumps({"run_id": run_id})))  # fmt: skip
                status = "failed" if r % 50 == 0 else "completed"
                copy.write_row(("2026-01-01 00:00:01+00", name, "incremental_sync", status, 0.5, 10, json.dumps(meta)))
            copy.write_row(("2026-01-01 00:00:02+00", "all", "run_summary", "completed", 5.0, 140,
                            json.dumps({"run_id": run_id})))  # fmt: skip
    conn.commit()
    conn.execute(f'ANALYZE "{schema}".sync_log')
    conn.commit()
    return int(conn.execute(f'SELECT count(*) FROM "{schema}".sync_log').fetchone()[0])  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    with ExitStack() as stack:
        dsn = os.environ.get("LIGHTSPEED_TEST_DSN")
        if not dsn:
            from devtools.pg import ThrowawayPostgres

            dsn = stack.enter_context(ThrowawayPostgres()).dsn
        assert dsn
        print(
            f"{'runs':>7} {'sync_log rows':>14} {'snapshot median s':>18} {'max s':>7} {'render s':>9} {'page KB':>8}"
        )
        for runs in args.runs:
            schema = f"bench_health_{runs}"
            conn = psycopg.connect(dsn)
            try:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                conn.commit()
                warehouse = Warehouse(conn, DbSettings(schema=schema))
                apply_migrations(warehouse)
                rows = fill(conn, schema, runs)
                times = []
                for _ in range(5):
                    began = time.perf_counter()
                    snapshot = health_snapshot(warehouse)
                    times.append(time.perf_counter() - began)
                began = time.perf_counter()
                page = render_html(snapshot)
                render_s = time.perf_counter() - began
                print(
                    f"{runs:>7} {rows:>14,} {statistics.median(times):>18.3f} {max(times):>7.3f}"
                    f" {render_s:>9.3f} {len(page) / 1024:>8.0f}"
                )
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
                conn.commit()
            finally:
                conn.close()


if __name__ == "__main__":
    main()
