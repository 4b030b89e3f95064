"""`make bench`: import speed, page writer vs raw COPY, API economy, memory, parse time, pacing.

    .venv/bin/python bench/run.py [--scale bench] [--rss-factor 4] [--quick]

Starts its own PostgreSQL (fsync on) and simulator (pages of 1 000), then measures in one run:
  1. the historical import of every entity (rows, s, rows/s, requests made vs the minimum);
  2. the page writer alone against a raw COPY of identical rows into identical empty tables;
  3. an incremental run after 1 % of products, customers and sales changed;
  4. a no-op run; 5. `full_refresh` of products over unchanged data;
  6. peak RSS of the process syncing sales at 1x and at `--rss-factor` x the sales, and of the
     one reading consignment products and gift cards at 1x, at `--rss-factor` x, and with 50
     more transactions a card (API 2026-07);
  7. the DAG file's parse time (median of 5 cold interpreters);
  8. prefetching on vs off (sales import), and a small rate-limit budget with two tasks;
  9. the import, a no-op run and 2. again through API 2026-07 (inventory by POST, 5 000 a
     page), its ratios beside 2.0's of the same run.
Prints a table and writes bench/results.json. Numbers, not assertions: see docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

import psycopg  # noqa: E402
from lightspeed_pipeline import entities as reg  # noqa: E402
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient  # noqa: E402
from lightspeed_pipeline.api.paginators import paginator_for  # noqa: E402
from lightspeed_pipeline.mapping import PreparedPage, prepare_page, to_pg_json  # noqa: E402
from lightspeed_pipeline.warehouse import DbSettings, Warehouse  # noqa: E402
from lightspeed_pipeline.warehouse.migrations import apply_migrations  # noqa: E402
from lightspeed_pipeline.warehouse.pages import PageWriter, _child_columns, entity_columns  # noqa: E402

from devtools.pg import ThrowawayPostgres  # noqa: E402
from devtools.simproc import SimulatorProcess  # noqa: E402

PAGE = 1000
BIG = ("products", "customers", "inventory", "sales")
RESULTS = ROOT / "bench" / "results.json"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- helpers ---------------------------------------------------------------------------


def migrate(dsn: str, schema: str, history: tuple[str, ...] = reg.HISTORY_DEFAULT) -> None:
    with Warehouse.open(dsn, DbSettings(schema=schema)) as warehouse:
        apply_migrations(warehouse, history=history)


def worker(
    dsn: str, sim: SimulatorProcess, schema: str, entities: list[str], *args: str, page_size: int = PAGE
) -> dict[str, Any]:
    """Sync `entities` in a fresh process (bench/worker.py); its results and peak RSS."""
    cmd = [sys.executable, str(ROOT / "bench" / "worker.py"), "--url", sim.url, "--token", sim.token,
           "--schema", schema, "--entities", ",".join(entities), "--page-size", str(page_size), *args]  # fmt: skip
    out = subprocess.run(cmd, env={**os.environ, "LIGHTSPEED_BENCH_DSN": dsn}, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {entities} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def listed(api_version: str) -> list[str]:
    """The entities `api_version` lists, in dependency order (2.0 has no purchase orders, gift cards
    or store credit: the DAG skips them there)."""
    return [n for n in reg.NAMES if reg.get(n).available(api_version)]


def sync_all(dsn: str, sim: SimulatorProcess, schema: str, *args: str) -> dict[str, dict[str, Any]]:
    """Every entity the API version lists, in dependency order; `sales` in a process of its own
    (its RSS is reported). `args` go to bench/worker.py (`--api-version 2026-07`: through that API
    version); the entities after sales in a third process."""
    version = args[args.index("--api-version") + 1] if "--api-version" in args else reg.V2
    names = listed(version)
    cut = names.index("sales")
    first = worker(dsn, sim, schema, names[:cut], *args)
    sales = worker(dsn, sim, schema, ["sales"], *args)
    rest = worker(dsn, sim, schema, names[cut + 1 :], *args) if names[cut + 1 :] else {"results": []}
    by_name = {r["entity"]: r for r in first["results"] + sales["results"] + rest["results"]}
    by_name["sales"]["rss_peak_mb"] = sales["rss_peak_mb"]
    return {n: by_name[n] for n in names}


def page_size(entity: reg.Entity) -> int:
    """Records per page as the sync asks for them: PAGE, or the endpoint's own size (2026-07's inventory: 5000)."""
    return getattr(entity.paging, "max_size", PAGE)


def minimum_requests(sim: SimulatorProcess, after: dict[str, int], api_version: str = reg.V2) -> dict[str, int]:
    """The fewest requests that can read each entity from `after`: full pages + 1 empty page
    (version paging), or the pages alone (product categories: `has_next` ends the read)."""
    entities = {e.name: e.at(api_version) for e in reg.ORDERED if e.available(api_version)}
    under = {n for n, e in entities.items() if isinstance(e.paging, reg.ParentPaging)}
    spec = {
        n: {"after": after.get(n, 0), "deleted": e.supports_deleted, "api_version": api_version}
        for n, e in entities.items()
        if n not in under
    }
    counts = sim.count(spec)
    out = {name: pages_needed(entities[name], n) for name, n in counts.items()}
    for name in under:  # per parent that moved: its pages and the empty page that ends them
        out[name] = sum(math.ceil(n / PAGE) + 1 for n in sim.parents(name, after.get(name, 0)).values())
    return {n: out[n] for n in entities}


def pages_needed(entity: reg.Entity, n: int) -> int:
    """The fewest requests that list `n` records: full pages + 1 empty page (version paging, gift
    cards newest first), one answer (an unpaged list), or the pages alone (categories: `has_next`)."""
    if isinstance(entity.paging, reg.WholeList):
        return 1
    if isinstance(entity.paging, reg.DescIdPaging):
        return entity.paging.requests(n, page_size(entity))
    pages = math.ceil(n / page_size(entity))
    if entity.versioned:
        return pages + 1
    return max(1, pages)


def cursors(dsn: str, schema: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f'SELECT entity_type, coalesce(last_version, 0) FROM "{schema}".sync_state').fetchall()
    return dict(rows)


def rows_of(r: dict[str, Any]) -> int:
    """Rows a sync wrote: entity rows plus child rows (line items, payments)."""
    return int(r["rows_inserted"]) + int(r["rows_updated"]) + int(r["child_rows"])


# -- page writer vs raw COPY ---------------------------------------------------------------


def fetch_pages(sim: SimulatorProcess, entity: reg.Entity, api_version: str) -> list[PreparedPage]:
    """Every page of `entity` as `api_version` lists it, prepared as the sync prepares it."""
    config = ClientConfig(
        base_url=sim.url,
        token=sim.token,
        page_size=PAGE,
        prefetch=False,
        api_version=api_version,
    )
    with LightspeedClient(config) as c:
        return [prepare_page(entity, p.records) for p in paginator_for(entity, c).pages()]


def write_pages(dsn: str, schema: str, entity: reg.Entity, pages: list[PreparedPage]) -> tuple[float, float]:
    """Seconds to write the pages into empty tables (new rows), then again with every
    version one higher (every row changed: the version-guarded upsert, children replaced)."""
    bumped = [
        PreparedPage(
            rows=[{**r, "version": r["version"] + 1} for r in p.rows],
            children=p.children,
            max_version=(p.max_version or 0) + 1,
        )
        for p in pages
    ]
    with Warehouse.open(dsn, DbSettings(schema=schema)) as warehouse:
        writer = PageWriter(warehouse)
        times = []
        for batch in (pages, bumped):
            started = time.perf_counter()
            for page in batch:
                writer.write(entity, page, cursor=page.max_version, after=None, run_id="bench")
            times.append(time.perf_counter() - started)
        return times[0], times[1]


def copy_write(dsn: str, schema: str, entity: reg.Entity, pages: list[PreparedPage]) -> float:
    """The same rows, typed the same way, by COPY into the same (empty, migrated) tables: one page per COPY+COMMIT."""
    from psycopg.types.json import Jsonb, set_json_dumps

    targets = [(entity.table, [n for n, _ in entity_columns(entity)], None)]
    targets += [(ch.table, [n for n, _ in _child_columns(ch)], ch.name) for ch in entity.children]
    members = {ch.name: ch.member for ch in entity.children}
    prepared = []
    for page in pages:  # build the tuples first: only the database work is timed, as for the page writer
        parents = {r["id"]: r["data"] for r in page.rows}
        batch = []
        for table, cols, child in targets:
            if child is None:
                source = page.rows
            else:  # the child's data: its element of the parent's record, as the page writer stores it
                key = entity.children[0].parent_key
                source = [{**r, "data": parents[r[key]][members[child]][r["position"]]} for r in page.children[child]]
            batch.append((table, cols, [tuple(Jsonb(r[c]) if c == "data" else r.get(c) for c in cols) for r in source]))
        prepared.append(batch)
    with psycopg.connect(dsn, options=f"-c search_path={schema}") as conn:
        set_json_dumps(lambda v: to_pg_json(v)[0], conn)  # the page writer's serialiser: compare the databases
        started = time.perf_counter()
        for batch in prepared:
            with conn.transaction():
                for table, cols, rows in batch:
                    with conn.cursor().copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                        for row in rows:
                            cp.write_row(row)
        return time.perf_counter() - started


def store_vs_copy(dsn: str, sim: SimulatorProcess, rounds: int, api_version: str = reg.V2) -> dict[str, Any]:
    """The page writer against COPY for the big entities' pages as `api_version` sends them."""
    out: dict[str, Any] = {}
    total = {"rows": 0, "store_s": 0.0, "update_s": 0.0, "copy_s": 0.0}
    tag = "" if api_version == reg.V2 else "_" + api_version.replace("-", "")
    for name in BIG:
        entity = reg.get(name).at(api_version)
        pages = fetch_pages(sim, entity, api_version)
        n_rows = sum(len(p.rows) + sum(len(c) for c in p.children.values()) for p in pages)
        per: dict[str, list[float]] = {"store": [], "update": [], "copy": []}
        for i in range(rounds):
            for kind in ("store", "copy") if i % 2 == 0 else ("copy", "store"):
                schema = f"svc{tag}_{kind}_{name}_{i}"
                migrate(dsn, schema)
                if kind == "copy":
                    per["copy"].append(copy_write(dsn, schema, entity, pages))
                else:
                    insert_s, update_s = write_pages(dsn, schema, entity, pages)
                    per["store"].append(insert_s)
                    per["update"].append(update_s)
        s, u, c = (statistics.median(per[k]) for k in ("store", "update", "copy"))
        out[name] = {
            "rows": n_rows,
            "store_s": round(s, 3),
            "update_s": round(u, 3),
            "copy_s": round(c, 3),
            "copy_rows_per_s": round(n_rows / c),
            "ratio": round(c / s, 3),
            "update_ratio": round(c / u, 3),
        }
        log(f"store vs COPY {name} ({api_version}): {n_rows} rows, store {s:.2f} s (all changed: {u:.2f} s),"
            f" COPY {c:.2f} s, ratio {c / s:.2f} (update {c / u:.2f})")  # fmt: skip
        for k, v in (("rows", n_rows), ("store_s", s), ("update_s", u), ("copy_s", c)):
            total[k] += v
        del pages
    out["total"] = {"rows": total["rows"], "store_s": round(total["store_s"], 3),
                    "update_s": round(total["update_s"], 3), "copy_s": round(total["copy_s"], 3),
                    "ratio": round(total["copy_s"] / total["store_s"], 3),
                    "update_ratio": round(total["copy_s"] / total["update_s"], 3),
                    "copy_rows_per_s": round(total["rows"] / total["copy_s"])}  # fmt: skip
    return out


def history_cost(dsn: str, sim: SimulatorProcess, rounds: int) -> dict[str, Any]:
    """History mode's cost on the page writer: products and inventory written into empty tables,
    then with every row changed, with history on and off, and the same rows by raw COPY, in
    rotating order each round (median of `rounds`); and the versions' storage."""
    out: dict[str, Any] = {}
    kinds = ("on", "off", "copy")
    for name in ("products", "inventory"):
        entity = reg.get(name)
        pages = fetch_pages(sim, entity, reg.V2)
        n_rows = sum(len(p.rows) for p in pages)
        per: dict[str, list[float]] = {k: [] for k in ("on_store", "on_update", "off_store", "off_update", "copy")}
        size = versions = 0
        for i in range(rounds):
            for mode in kinds[i % 3 :] + kinds[: i % 3]:
                schema = f"hist_{mode}_{name}_{i}"
                migrate(dsn, schema, history=(name,) if mode == "on" else ())
                if mode == "copy":
                    per["copy"].append(copy_write(dsn, schema, entity, pages))
                    continue
                insert_s, update_s = write_pages(dsn, schema, entity, pages)
                per[f"{mode}_store"].append(insert_s)
                per[f"{mode}_update"].append(update_s)
                if mode == "on":
                    with psycopg.connect(dsn) as conn:
                        table = f"{schema}.{entity.versions_table}"
                        versions = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                        size = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]  # type: ignore[index]
        m = {k: statistics.median(v) for k, v in per.items()}
        out[name] = {
            "rows": n_rows,
            **{f"{k}_s": round(v, 3) for k, v in m.items()},
            "store_vs_copy_on": round(m["copy"] / m["on_store"], 3),
            "store_vs_copy_off": round(m["copy"] / m["off_store"], 3),
            "update_vs_copy_on": round(m["copy"] / m["on_update"], 3),
            "update_vs_copy_off": round(m["copy"] / m["off_update"], 3),
            "versions_written": versions,
            "mb_per_million_versions": round(size / max(versions, 1), 1),  # bytes a version = MB a million
        }
        log(f"history {name}: {out[name]}")
    copy = sum(out[n]["copy_s"] for n in out)
    out["total"] = {
        k: round(copy / sum(out[n][f"{mode}_s"] for n in ("products", "inventory")), 3)
        for k, mode in (("store_vs_copy_on", "on_store"), ("store_vs_copy_off", "off_store"),
                        ("update_vs_copy_on", "on_update"), ("update_vs_copy_off", "off_update"))
    }  # fmt: skip
    log(f"history products + inventory: {out['total']}")
    return out


def dated_run(dsn: str, sim: SimulatorProcess, rounds: int, res: dict[str, Any]) -> dict[str, Any]:
    """Import, no-op and page writer vs COPY through the newest API version, with its ratios set
    beside 2.0's of the same run (`res`)."""
    version = reg.NEWEST
    migrate(dsn, "bench_dated")
    minimum = minimum_requests(sim, {}, version)
    imp = sync_all(dsn, sim, "bench_dated", "--api-version", version)
    big_rows = sum(rows_of(imp[n]) for n in BIG)
    big_s = sum(imp[n]["duration_s"] for n in BIG)
    noop = sync_all(dsn, sim, "bench_dated", "--api-version", version)
    svc = store_vs_copy(dsn, sim, rounds, version)
    inventory = imp["inventory"]
    out: dict[str, Any] = {
        "api_version": version,
        "import": {
            n: {
                "rows": rows_of(r),
                "seconds": r["duration_s"],
                "requests": r["requests"],
                "requests_minimum": minimum[n],
                "pages": r["pages"],
            }
            for n, r in imp.items()
        },
        "store_vs_copy": svc,
        "noop_requests_per_entity": {n: r["requests"] for n, r in noop.items()},
        "noop_rows_written": sum(r["written"] + r["child_rows"] for r in noop.values()),
    }
    import_rows_per_s = big_rows / big_s
    import_vs_copy = import_rows_per_s / svc["total"]["copy_rows_per_s"]
    out["summary"] = {
        "store_vs_copy_ratio": svc["total"]["ratio"],
        "store_vs_copy_ratio_2_0": res["store_vs_copy_ratio"],
        "store_vs_copy_relative": round(svc["total"]["ratio"] / res["store_vs_copy_ratio"], 3),
        "import_vs_copy_ratio": round(import_vs_copy, 3),
        "import_vs_copy_ratio_2_0": res["import_vs_copy_ratio"],
        "import_vs_copy_relative": round(import_vs_copy / res["import_vs_copy_ratio"], 3),
        "inventory_records_per_page": round(inventory["records"] / max(1, inventory["pages"])),
        "inventory_requests": inventory["requests"],
        "requests_made": sum(r["requests"] for r in imp.values()),
        "requests_minimum": sum(minimum.values()),
        "noop_requests": sum(out["noop_requests_per_entity"].values()),
        "noop_rows_written": out["noop_rows_written"],
    }
    return out


# -- memory of the reads that are not paged by version -------------------------------------

RSS_MEASURED = ["consignment_products", "gift_cards"]


def rss_store(dsn: str, scale: str, factor: int) -> dict[str, Any]:
    """Peak RSS of one process reading the consignment products (per consignment) and the gift cards
    (newest first, all of them, every run), at the scale's counts, at `factor` x those counts, and
    at the scale's counts with 50 more transactions on every card. The rest of the store is small
    and synced first by another process, so the figure is those two reads' alone."""
    from simulator.data import parse_scale

    base = parse_scale(scale)
    rest = "products=2000,customers=200,inventory=0,sales=2000,price_book_products=200"
    runs = {
        "1x": f"{scale},{rest}",
        f"{factor}x": (
            f"{scale},{rest},gift_cards={base['gift_cards'] * factor},consignments={base['consignments'] * factor},"
            f"consignment_products={base['consignment_products'] * factor}"
        ),
        "1x_50_transactions_a_card": f"{scale},{rest},gift_card_transactions=50",
    }
    out: dict[str, Any] = {}
    for label, run_scale in runs.items():
        schema = f"bench_rss_{label}"
        with SimulatorProcess(scale=run_scale, max_page_size=PAGE) as sim:
            migrate(dsn, schema)
            others = [n for n in listed(reg.NEWEST) if n not in RSS_MEASURED]
            worker(dsn, sim, schema, others, "--api-version", reg.NEWEST)
            got = worker(dsn, sim, schema, RSS_MEASURED, "--api-version", reg.NEWEST)
        out[label] = {
            "rss_peak_mb": got["rss_peak_mb"],
            **{f"{r['entity']}_records": r["records"] for r in got["results"]},
            **{f"{r['entity']}_child_rows": r["child_rows"] for r in got["results"] if r["child_rows"]},
        }
    one = out["1x"]["rss_peak_mb"]
    out[f"ratio_{factor}x"] = round(out[f"{factor}x"]["rss_peak_mb"] / one, 3)
    out["ratio_50_transactions"] = round(out["1x_50_transactions_a_card"]["rss_peak_mb"] / one, 3)
    return out


# -- DAG parse time --------------------------------------------------------------------------


def dag_parse_s(n: int = 5) -> dict[str, Any]:
    """Seconds to execute dags/lightspeed_sync.py in a fresh interpreter with Airflow imported
    (what the DAG processor pays per parse), median of `n`; plus the cold total."""
    code = (
        "import time, runpy; t0 = time.perf_counter(); import airflow.sdk; t1 = time.perf_counter();"
        f"runpy.run_path({str(ROOT / 'dags' / 'lightspeed_sync.py')!r}); t2 = time.perf_counter();"
        "print(t2 - t1, t2 - t0)"
    )
    parse, total = [], []
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "AIRFLOW_HOME": home, "PYTHONPATH": str(ROOT / "plugins")}
        for _ in range(n):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            a, b = map(float, out.stdout.split()[-2:])
            parse.append(a)
            total.append(b)
    return {"median_s": round(statistics.median(parse), 4),
            "cold_with_airflow_import_s": round(statistics.median(total), 3)}  # fmt: skip


# -- rate limit ----------------------------------------------------------------------------


def rate_limited(dsn: str, limit: int, window: float) -> dict[str, Any]:
    """Two entity tasks at once against a small sliding-window budget: 429s and time vs the minimum."""
    scale = "products=1500,customers=1500,inventory=0,sales=0"
    with SimulatorProcess(scale=scale, max_page_size=PAGE,
                          extra_args=["--rate-limit", str(limit), "--rate-window", str(window)]) as sim:  # fmt: skip
        schema = "bench_rate"
        migrate(dsn, schema)
        small = [n for n in listed(reg.V2) if n not in ("products", "customers", "sales", "inventory")]
        worker(dsn, sim, schema, small)  # reference data first (not timed), then let the window empty
        time.sleep(window)
        sim.reset_stats()
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:  # two pool slots: both share the one budget
            # many small pages: the budget, not the data, sets the pace
            futures = [pool.submit(worker, dsn, sim, schema, [n], page_size=25) for n in ("products", "customers")]
            results = [f.result() for f in futures]
        elapsed = time.perf_counter() - started
        stats = sim.stats()
    n = len(stats["requests"])
    received_429 = int(stats["by_status"].get("429", 0))
    ideal = max(0, n - received_429) * window / limit  # the budget's average rate
    return {"limit": limit, "window_s": window, "requests": n, "received_429": received_429,
            "seconds": round(elapsed, 2), "budget_min_s": round(ideal, 2),
            "vs_min": round(elapsed / ideal, 3) if ideal else None,
            "paced": sum(r["results"][0]["paced"] for r in results)}  # fmt: skip


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="bench", help="simulator scale (default: bench = 20k/20k/60k/50k)")
    parser.add_argument("--rss-factor", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="store vs COPY rounds (median)")
    parser.add_argument("--quick", action="store_true", help="skip the RSS-at-Nx, prefetch and rate-limit runs")
    args = parser.parse_args()
    res: dict[str, Any] = {"scale": args.scale, "page_size": PAGE}
    started = time.perf_counter()
    with ThrowawayPostgres(settings={"fsync": "on", "synchronous_commit": "on"}) as pg:
        dsn = pg.dsn
        assert dsn is not None
        res["machine"] = {"cores": os.cpu_count(), "python": platform.python_version(), "postgres": pg.version,
                          "platform": platform.platform()}  # fmt: skip
        log(f"PostgreSQL: {pg.version}; {os.cpu_count()} cores")
        res["dag_parse"] = dag_parse_s()
        log(f"DAG parse: {res['dag_parse']}")
        with SimulatorProcess(scale=args.scale, max_page_size=PAGE) as sim:
            # 1. historical import
            migrate(dsn, "bench")
            minimum = minimum_requests(sim, {})
            sim.reset_stats()
            imp = sync_all(dsn, sim, "bench")
            res["import"] = {
                n: {"rows": rows_of(r), "records": r["records"], "seconds": r["duration_s"],
                    "rows_per_s": round(rows_of(r) / r["duration_s"]) if r["duration_s"] else None,
                    "fetch_s": r["fetch_s"], "write_s": r["write_s"], "wait_s": r["wait_s"],
                    "requests": r["requests"], "requests_minimum": minimum[n], "retries": r["retries"]}
                for n, r in imp.items()
            }  # fmt: skip
            res["rss_mb_1x"] = imp["sales"]["rss_peak_mb"]
            big_rows = sum(res["import"][n]["rows"] for n in BIG)
            big_s = sum(res["import"][n]["seconds"] for n in BIG)
            res["import_rows_per_s"] = round(big_rows / big_s)
            res["requests_made"] = sum(r["requests"] for r in imp.values())
            res["requests_minimum"] = sum(minimum.values())
            log(f"import: {big_rows} rows in {big_s:.1f} s; requests {res['requests_made']}/{res['requests_minimum']}")
            # 2. page writer vs COPY on the same rows
            svc = store_vs_copy(dsn, sim, args.rounds)
            res["store_vs_copy"] = svc
            res["store_vs_copy_ratio"] = svc["total"]["ratio"]
            res["store_update_vs_copy_ratio"] = svc["total"]["update_ratio"]
            res["import_vs_copy_ratio"] = round(res["import_rows_per_s"] / svc["total"]["copy_rows_per_s"], 3)
            # 2b. history mode on and off for products and inventory, against the same COPY
            res["history"] = history_cost(dsn, sim, args.rounds)
            # 3. incremental after 1 % changed
            changed = sim.mutate(seed=7, update={n: max(1, sim.count({n: {}})[n] // 100)
                                                 for n in ("products", "customers", "sales")})["changed"]  # fmt: skip
            before = cursors(dsn, "bench")
            minimum = minimum_requests(sim, before)
            inc = sync_all(dsn, sim, "bench")
            res["incremental"] = {
                n: {"requests": r["requests"], "requests_minimum": minimum[n], "rows_written": r["written"],
                    "rows_changed": len(changed.get(n, [])), "child_rows": r["child_rows"]}
                for n, r in inc.items()
            }  # fmt: skip
            log(f"incremental: {json.dumps({n: v for n, v in res['incremental'].items() if v['rows_written']})}")
            # 4. no-op
            noop = sync_all(dsn, sim, "bench")
            res["noop_requests_per_entity"] = {n: r["requests"] for n, r in noop.items()}
            res["noop_rows_written"] = sum(r["written"] + r["child_rows"] for r in noop.values())
            log(f"no-op: {res['noop_requests_per_entity']}, rows written {res['noop_rows_written']}")
            # 5. full refresh of products over unchanged data
            fr = worker(dsn, sim, "bench", ["products"], "--full-refresh")["results"][0]
            res["full_refresh_products"] = {"seconds": fr["duration_s"], "fetch_s": fr["fetch_s"],
                                            "write_s": fr["write_s"], "rows_rewritten": fr["written"],
                                            "records_read": fr["records"], "requests": fr["requests"]}  # fmt: skip
            log(f"full refresh products: {res['full_refresh_products']}")
            # 9. the same import and page writer vs COPY through API 2026-07 (inventory by POST,
            #    5 000 a page; sales and inventory in their dated shapes), into a schema of its own
            res["dated"] = dated_run(dsn, sim, args.rounds, res)
            log(f"2026-07: {json.dumps(res['dated']['summary'])}")
            # 8a. prefetch off vs on: the sales import again, into fresh schemas
            if not args.quick:
                pf: dict[str, list[float]] = {"on": [], "off": []}
                for i in range(2):
                    for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                        schema = f"bench_pf_{mode}_{i}"
                        migrate(dsn, schema)
                        extra = ["--no-prefetch"] if mode == "off" else []
                        pf[mode].append(worker(dsn, sim, schema, ["sales"], *extra)["results"][0]["duration_s"])
                on, off = statistics.median(pf["on"]), statistics.median(pf["off"])
                res["prefetch"] = {"sales_s_off": round(off, 2), "sales_s_on": round(on, 2),
                                   "gain": round(1 - on / off, 3)}  # fmt: skip
                log(f"prefetch: {res['prefetch']}")
        # 6. RSS at N x the sales
        if not args.quick:
            sales = res["import"]["sales"]["records"]
            scale = f"{args.scale},sales={sales * args.rss_factor},products=2000,customers=100,inventory=0"
            with SimulatorProcess(scale=scale, max_page_size=PAGE) as sim:
                migrate(dsn, "bench_rss")
                worker(dsn, sim, "bench_rss", [n for n in listed(reg.V2) if n != "sales"])
                big = worker(dsn, sim, "bench_rss", ["sales"])
            res["rss_mb_4x"] = big["rss_peak_mb"]
            res["rss_sales_records_4x"] = big["results"][0]["records"]
            log(f"RSS: 1x {res['rss_mb_1x']} MB, {args.rss_factor}x {res['rss_mb_4x']} MB")
            # 6b. RSS of the gift cards and consignment products read, at 1x, at N x, and at 1x
            #     with 50 more transactions a card (2026-07)
            res["rss_store"] = rss_store(dsn, args.scale, args.rss_factor)
            log(f"RSS gift cards and consignment products: {res['rss_store']}")
            # 8b. rate limit
            res["rate_limit"] = rate_limited(dsn, limit=40, window=2.0)
            log(f"rate limit: {res['rate_limit']}")
    res["dag_parse_s"] = res["dag_parse"]["median_s"]
    res["bench_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    print_table(res)


def print_table(res: dict[str, Any]) -> None:
    print(f"\nMachine: {res['machine']['cores']} cores, {res['machine']['postgres']}, scale {res['scale']}")
    print(f"\n{'entity':<20}{'rows':>9}{'s':>8}{'rows/s':>9}{'requests':>10}{'minimum':>9}")
    for n, r in res["import"].items():
        print(f"{n:<20}{r['rows']:>9}{r['seconds']:>8.2f}{r['rows_per_s'] or 0:>9}{r['requests']:>10}"
              f"{r['requests_minimum']:>9}")  # fmt: skip
    print("\npage writer vs raw COPY (same rows, same tables), per entity:")
    for n, r in res["store_vs_copy"].items():
        print(f"  {n:<10} rows {r['rows']:>7}  store {r['store_s']:>6.2f} s  all changed {r['update_s']:>6.2f} s"
              f"  COPY {r['copy_s']:>6.2f} s  ratio {r['ratio']:.2f}"
              f"  update ratio {r['update_ratio']:.2f}")  # fmt: skip
    keys = ("store_vs_copy_ratio", "store_update_vs_copy_ratio", "import_rows_per_s", "import_vs_copy_ratio",
            "requests_made", "requests_minimum",
            "noop_rows_written", "rss_mb_1x", "rss_mb_4x", "dag_parse_s")  # fmt: skip
    print()
    for k in keys:
        print(f"  {k:<24} {res.get(k)}")
    print(f"  noop_requests_per_entity {res['noop_requests_per_entity']}")
    inc = {n: (v["rows_written"], v["rows_changed"], v["requests"], v["requests_minimum"])
           for n, v in res["incremental"].items() if v["rows_changed"] or v["rows_written"]}  # fmt: skip
    print(f"  incremental (written, changed, requests, minimum): {inc}")
    print(f"  full_refresh_products    {res['full_refresh_products']}")
    for name, h in res.get("history", {}).items():
        if name == "total":
            print(f"  history products + inventory: {h}")
            continue
        print(f"  history {name:<10} store/COPY on {h['store_vs_copy_on']} off {h['store_vs_copy_off']} (>= 0.7);"
              f" all changed on {h['update_vs_copy_on']} off {h['update_vs_copy_off']};"
              f" {h['mb_per_million_versions']} MB per million versions")  # fmt: skip
    for k in ("prefetch", "rss_store", "rate_limit"):
        if k in res:
            print(f"  {k:<24} {res[k]}")
    if "dated" in res:
        d = res["dated"]["summary"]
        print(f"\nAPI {res['dated']['api_version']} beside 2.0 (same run; target: within 10 %):")
        print(f"  store/COPY  {d['store_vs_copy_ratio']:.3f} vs {d['store_vs_copy_ratio_2_0']:.3f}"
              f"  ({d['store_vs_copy_relative']:.3f} x)")  # fmt: skip
        print(f"  import/COPY {d['import_vs_copy_ratio']:.3f} vs {d['import_vs_copy_ratio_2_0']:.3f}"
              f"  ({d['import_vs_copy_relative']:.3f} x)")  # fmt: skip
        print(f"  inventory: {d['inventory_records_per_page']} records a page, {d['inventory_requests']} requests;"
              f" requests {d['requests_made']}/{d['requests_minimum']} (minimum); no-op {d['noop_requests']} requests,"
              f" {d['noop_rows_written']} rows written")  # fmt: skip
        print(f"  no-op requests per entity: {res['dated']['noop_requests_per_entity']}")
    print(f"\nwrote {RESULTS.relative_to(ROOT)} ({res['bench_seconds']} s)")


if __name__ == "__main__":
    main()
