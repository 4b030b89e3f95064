"""Should sales and line items be partitioned by month? Measure it at 1M line items.

    .venv/bin/python bench/partitioning.py [--sales 250000]

Builds the same data twice in its own PostgreSQL (fsync on): once in the project's
tables, once with `lightspeed_sales` and `lightspeed_sale_line_items` partitioned by
month of `sale_date` (the seed's suggestion; the primary keys must then include
`sale_date`, and the line items need a copy of it). Then, on both:
  * the month report: `daily_sales_summary`'s query for one month, written with the range
    on `sale_date` (so an index or partition pruning can use it), median of 7;
  * the upsert path, in pages of 1 000 sales with 4 line items each, one transaction per
    page like the store: new sales (the daily case) and changed sales spread over the
    two years (voids and returns of old sales).
Prints the table and writes bench/partitioning.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

import psycopg  # noqa: E402
from lightspeed_pipeline.warehouse import DbSettings, Warehouse, connect  # noqa: E402
from lightspeed_pipeline.warehouse.migrations import apply_migrations  # noqa: E402

from devtools.pg import ThrowawayPostgres  # noqa: E402

START = "2024-01-01"
MONTHS = 26  # the data spans 24 months; two more for the new sales
MINUTES_PER_SALE = 4.2

SALES_COLS = ("id text, version bigint, status text, sale_date timestamptz, total_price numeric, total_tax numeric,"
              " outlet_id text, data jsonb")  # fmt: skip
ITEM_COLS = "sale_id text, position integer, id text, product_id text, quantity numeric, price numeric, data jsonb"

REPORT = """
SELECT (s.sale_date AT TIME ZONE COALESCE(o.time_zone, 'UTC'))::date AS day, s.outlet_id,
       count(*), sum(s.total_price), sum(s.total_tax), COALESCE(sum(d.discount), 0)
FROM lightspeed_sales s
LEFT JOIN lightspeed_outlets o ON o.id = s.outlet_id
LEFT JOIN LATERAL (
    SELECT sum(COALESCE(li.discount_total, li.discount * li.quantity, 0)) AS discount
    FROM lightspeed_sale_line_items li WHERE li.sale_id = s.id AND li.status IS DISTINCT FROM 'VOIDED'
) d ON true
WHERE (s.status = 'CLOSED' OR s.status LIKE '%%\\_CLOSED') AND s.deleted_at IS NULL
  AND s.sale_date >= %(lo)s AND s.sale_date < %(hi)s
GROUP BY 1, 2
"""


def partitioned_ddl(conn: psycopg.Connection[Any]) -> None:
    """Replace the two tables by month-partitioned ones with the same columns and indexes."""
    for table, key in (
        ("lightspeed_sale_line_items", "sale_id, position, sale_date"),
        ("lightspeed_sales", "id, sale_date"),
    ):
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_plain")
        extra = ", sale_date timestamptz NOT NULL" if table == "lightspeed_sale_line_items" else ""
        like = f"LIKE {table}_plain INCLUDING DEFAULTS{extra}"
        conn.execute(f"CREATE TABLE {table} ({like}) PARTITION BY RANGE (sale_date)")
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN sale_date SET NOT NULL")
        conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({key})")
        for m in range(MONTHS):
            conn.execute(
                f"CREATE TABLE {table}_m{m:02d} PARTITION OF {table} FOR VALUES FROM"
                f" (timestamptz '{START}' + interval '{m} month') TO (timestamptz '{START}' + interval '{m + 1} month')"
            )
        conn.execute(f"DROP TABLE {table}_plain CASCADE")
    for ddl in (
        "CREATE INDEX ON lightspeed_sales (invoice_number)", "CREATE INDEX ON lightspeed_sales (sale_date)",
        "CREATE INDEX ON lightspeed_sales (outlet_id, sale_date)", "CREATE INDEX ON lightspeed_sales (customer_id)",
        "CREATE INDEX ON lightspeed_sales (created_at)", "CREATE INDEX ON lightspeed_sales (updated_at)",
        "CREATE INDEX ON lightspeed_sale_line_items (product_id)",
    ):  # fmt: skip
        conn.execute(ddl)


def load(conn: psycopg.Connection[Any], n_sales: int, partitioned: bool) -> None:
    """Identical deterministic data in either layout: n sales, 4 line items each."""
    li_date = ", sale_date" if partitioned else ""
    for lo in range(0, n_sales, 10_000):
        hi = min(n_sales, lo + 10_000) - 1
        with conn.transaction():
            conn.execute(
                """
INSERT INTO lightspeed_sales (id, version, created_at, updated_at, invoice_number, status, sale_date,
    total_price, total_tax, outlet_id, register_id, customer_id, user_id, data)
SELECT 's' || g, 1000 + g, d, d, 'INV' || g, CASE WHEN g %% 12 = 0 THEN 'VOIDED' ELSE 'CLOSED' END, d,
    (g %% 500) + 0.5, ((g %% 500) + 0.5) / 11, 'o' || (g %% 3), 'r' || (g %% 6), 'c' || (g %% 20000), 'u' || (g %% 10),
    jsonb_build_object('id', 's' || g, 'note', repeat('x', 900), 'status', 'CLOSED')
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g,
     LATERAL (SELECT timestamptz '2024-01-01' + g * interval '4.2 minutes') t(d)""",
                {"lo": lo, "hi": hi},
            )
            conn.execute(
                f"""
INSERT INTO lightspeed_sale_line_items (sale_id, position, id, product_id, quantity, price, discount, status,
    data{li_date})
SELECT 's' || g, p, 'l' || g || '-' || p, 'p' || ((g * 7 + p) %% 20000), 1 + p %% 3, 9.5, 0.5,
    CASE WHEN p = 3 AND g %% 5 = 0 THEN 'VOIDED' ELSE 'CONFIRMED' END,
    jsonb_build_object('id', 'l' || g || '-' || p, 'note', repeat('y', 150)){", d" if partitioned else ""}
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g, generate_series(0, 3) p,
     LATERAL (SELECT timestamptz '2024-01-01' + g * interval '4.2 minutes') t(d)""",
                {"lo": lo, "hi": hi},
            )
    conn.execute("VACUUM ANALYZE lightspeed_sales")
    conn.execute("VACUUM ANALYZE lightspeed_sale_line_items")


def pages(
    kind: str, n_sales: int, n_pages: int, seed: int = 1
) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Pages of (sales, line items): "new" sales after the data, or "changed" old ones."""
    rng = random.Random(seed)
    base = time.mktime(time.strptime(START, "%Y-%m-%d"))
    out = []
    for p in range(n_pages):
        if kind == "new":
            nums = range(n_sales + p * 1000, n_sales + (p + 1) * 1000)
        else:
            nums = sorted(rng.sample(range(n_sales), 1000))
        sales, items = [], []
        for g in nums:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + g * MINUTES_PER_SALE * 60))
            sales.append({"id": f"s{g}", "version": 10_000_000 + p * 1000 + g, "status": "CLOSED", "sale_date": when,
                          "total_price": 12.5, "total_tax": 1.1, "outlet_id": f"o{g % 3}",
                          "data": {"id": f"s{g}", "note": "z" * 900, "status": "CLOSED"}})  # fmt: skip
            for pos in range(4):
                items.append({"sale_id": f"s{g}", "position": pos, "id": f"l{g}-{pos}", "product_id": f"p{pos}",
                              "quantity": 2, "price": 9.5, "sale_date": when,
                              "data": {"id": f"l{g}-{pos}", "note": "w" * 150}})  # fmt: skip
        out.append((sales, items))
    return out


def upsert(
    conn: psycopg.Connection[Any], page: tuple[list[dict[str, Any]], list[dict[str, Any]]], partitioned: bool
) -> None:
    """The store's statement shape: version-guarded upsert, then replace the written sales' children."""
    sales, items = page
    conflict = "id, sale_date" if partitioned else "id"
    li_cols = ITEM_COLS + (", sale_date timestamptz" if partitioned else "")
    li_names = "sale_id, position, id, product_id, quantity, price, data" + (", sale_date" if partitioned else "")
    # the partitioned delete names the months it touches, so only those partitions are searched
    prune = " AND sale_date >= %(lo)s AND sale_date <= %(hi)s" if partitioned else ""
    dates = [s["sale_date"] for s in sales]
    with conn.transaction():
        ids = conn.execute(
            f"""
WITH w AS (
    INSERT INTO lightspeed_sales AS t (id, version, status, sale_date, total_price, total_tax, outlet_id, data)
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS r({SALES_COLS})
    ON CONFLICT ({conflict}) DO UPDATE SET version = excluded.version, status = excluded.status,
        total_price = excluded.total_price, data = excluded.data, synced_at = now()
    WHERE excluded.version > t.version
    RETURNING t.id)
SELECT coalesce(array_agg(id), '{{}}') FROM w""",
            {"rows": json.dumps(sales)},
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(f"DELETE FROM lightspeed_sale_line_items WHERE sale_id = ANY(%(ids)s){prune}",
                     {"ids": ids, "lo": min(dates), "hi": max(dates)})  # fmt: skip
        conn.execute(
            f"INSERT INTO lightspeed_sale_line_items ({li_names}) SELECT {li_names}"
            f" FROM jsonb_to_recordset(%(rows)s::jsonb) AS r({li_cols}) WHERE sale_id = ANY(%(ids)s)",
            {"rows": json.dumps(items), "ids": ids},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=250_000, help="sales (4 line items each)")
    parser.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()
    months = int(args.sales * MINUTES_PER_SALE / 60 / 24 / 30.44)
    report_month = (f"{2024 + (months - 2) // 12}-{(months - 2) % 12 + 1:02d}-01",
                    f"{2024 + (months - 1) // 12}-{(months - 1) % 12 + 1:02d}-01")  # fmt: skip
    res: dict[str, Any] = {"sales": args.sales, "line_items": args.sales * 4, "report_month": report_month}
    with ThrowawayPostgres(settings={"fsync": "on", "synchronous_commit": "on"}) as pg:
        assert pg.dsn is not None
        res["postgres"] = pg.version
        for layout in ("plain", "partitioned"):
            partitioned = layout == "partitioned"
            conn = connect(pg.dsn)
            apply_migrations(Warehouse(conn, DbSettings(schema=layout)))
            conn.execute(f'SET search_path = "{layout}"')
            if partitioned:
                partitioned_ddl(conn)
            conn.execute("INSERT INTO lightspeed_outlets (id, data, time_zone) VALUES ('o0', '{}', 'Australia/Sydney'),"
                         " ('o1', '{}', 'Europe/London'), ('o2', '{}', 'America/New_York')")  # fmt: skip
            t = time.perf_counter()
            load(conn, args.sales, partitioned)
            out: dict[str, Any] = {"load_s": round(time.perf_counter() - t, 1)}
            times = []
            for _ in range(7):
                t = time.perf_counter()
                rows = conn.execute(REPORT, {"lo": report_month[0], "hi": report_month[1]}).fetchall()
                times.append(time.perf_counter() - t)
            out["month_report_ms"] = round(statistics.median(times) * 1000, 1)
            out["month_report_rows"] = len(rows)
            if partitioned:  # the report rewritten for the layout: line items pruned to the sale's month
                aware = REPORT.replace("li.sale_id = s.id", "li.sale_id = s.id AND li.sale_date = s.sale_date")
                times = []
                for _ in range(7):
                    t = time.perf_counter()
                    conn.execute(aware, {"lo": report_month[0], "hi": report_month[1]}).fetchall()
                    times.append(time.perf_counter() - t)
                out["month_report_partition_aware_ms"] = round(statistics.median(times) * 1000, 1)
            for kind in ("new", "changed"):
                t = time.perf_counter()
                for page in pages(kind, args.sales, args.pages):
                    upsert(conn, page, partitioned)
                el = time.perf_counter() - t
                out[f"upsert_{kind}_sales_per_s"] = round(args.pages * 1000 / el)
            size = conn.execute(
                "SELECT coalesce((SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree(t) p"
                " WHERE p.isleaf), pg_total_relation_size(t))"
                " FROM unnest(ARRAY['lightspeed_sales', 'lightspeed_sale_line_items']::regclass[]) t"
            ).fetchall()
            out["size_mb"] = round(float(sum(r[0] for r in size)) / 2**20, 1)
            res[layout] = out
            print(layout, out, flush=True)
            conn.close()
    (ROOT / "bench" / "partitioning.json").write_text(json.dumps(res, indent=2) + "\n")
    p, q = res["plain"], res["partitioned"]
    print(f"\n{'measure':<32}{'plain':>12}{'partitioned':>14}")
    for k in ("month_report_ms", "month_report_partition_aware_ms", "upsert_new_sales_per_s",
              "upsert_changed_sales_per_s", "load_s", "size_mb"):  # fmt: skip
        print(f"{k:<32}{p.get(k, p['month_report_ms'] if 'month' in k else ''):>12}{q[k]:>14}")


if __name__ == "__main__":
    main()
