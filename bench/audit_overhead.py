"""How much the customers audit trail costs: sync customers with and without the audit triggers.

    .venv/bin/python bench/audit_overhead.py [--customers 20000] [--repeat 5]

Starts its own PostgreSQL and simulator. Each round syncs the same customers into two
fresh schemas, one with the audit triggers and one without (alternating the order), first
as a historical import (INSERT path) and then after every customer changed (UPDATE path,
where the trigger computes changed columns). Prints rows/s and the drop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from lightspeed_pipeline import entities as reg  # noqa: E402
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient  # noqa: E402
from lightspeed_pipeline.sync import sync_entity  # noqa: E402
from lightspeed_pipeline.warehouse import DbSettings, Warehouse  # noqa: E402
from lightspeed_pipeline.warehouse.migrations import apply_migrations  # noqa: E402

from devtools.pg import ThrowawayPostgres  # noqa: E402
from devtools.simproc import SimulatorProcess  # noqa: E402


def sync_customers(sim: SimulatorProcess, dsn: str, schema: str) -> tuple[float, float, int]:
    with Warehouse.open(dsn, DbSettings(schema=schema)) as warehouse:
        with LightspeedClient(ClientConfig(base_url=sim.url, token=sim.token, page_size=1000)) as client:
            r = sync_entity(reg.get("customers"), client, warehouse)
        return r.duration_s, r.write_s, r.inserted + r.updated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    scale = f"customers={args.customers},products=50,inventory=0,sales=0"
    results: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    with ThrowawayPostgres(settings={"fsync": "on", "synchronous_commit": "on"}) as pg:
        assert pg.dsn is not None
        for round_no in range(args.repeat):
            order = ("audited", "plain") if round_no % 2 == 0 else ("plain", "audited")
            with SimulatorProcess(scale=scale, max_page_size=1000) as sim:
                for kind in order:
                    schema = f"bench_{kind}_{round_no}"
                    with Warehouse.open(pg.dsn, DbSettings(schema=schema)) as warehouse:
                        apply_migrations(warehouse)
                        if kind == "plain":
                            with warehouse.transaction() as conn:
                                for trigger in ("lightspeed_audit_insert", "lightspeed_audit_update"):
                                    conn.execute(f'DROP TRIGGER {trigger} ON "{schema}".lightspeed_customers')
                    results.setdefault((kind, "insert"), []).append(sync_customers(sim, pg.dsn, schema))
                sim.mutate(seed=round_no, update={"customers": args.customers})
                for kind in order:
                    schema = f"bench_{kind}_{round_no}"
                    results.setdefault((kind, "update"), []).append(sync_customers(sim, pg.dsn, schema))
        print(f"PostgreSQL {pg.version}; {args.customers} customers; {args.repeat} rounds; fsync on")
    print(f"{'path':<8} {'rows/s plain':>13} {'rows/s audited':>15} {'drop':>7}   {'write-only drop':>15}")
    for path in ("insert", "update"):
        plain = results[("plain", path)]
        audited = results[("audited", path)]
        rate = lambda rs: statistics.median(n / d for d, _, n in rs)  # noqa: E731
        wrate = lambda rs: statistics.median(n / w for _, w, n in rs)  # noqa: E731
        drop = 1 - rate(audited) / rate(plain)
        wdrop = 1 - wrate(audited) / wrate(plain)
        print(f"{path:<8} {rate(plain):>13.0f} {rate(audited):>15.0f} {drop:>7.1%}   {wdrop:>15.1%}")


if __name__ == "__main__":
    main()
