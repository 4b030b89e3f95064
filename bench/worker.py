"""One sync process for the benchmark: sync the given entities, print one JSON line.

    LIGHTSPEED_BENCH_DSN=... python bench/worker.py --url URL --token T --schema S --entities a,b

Runs exactly what the DAG's entity tasks run (`sync_entity` with a `LightspeedClient`
and a `Warehouse`), without Airflow, in its own process so that its peak RSS (VmHWM) is the
memory of syncing those entities and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from lightspeed_pipeline import entities as reg  # noqa: E402
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient  # noqa: E402
from lightspeed_pipeline.sync import sync_entity  # noqa: E402
from lightspeed_pipeline.warehouse import DbSettings, Warehouse  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--entities", required=True, help="comma-separated, synced in this order")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--no-prefetch", action="store_true")
    parser.add_argument("--rate-reserve", type=int, default=None)
    parser.add_argument("--api-version", default=reg.V2, help="2.0 or a dated version (2026-07)")
    args = parser.parse_args()
    extra = {} if args.rate_reserve is None else {"rate_reserve": args.rate_reserve}
    config = ClientConfig(
        base_url=args.url,
        token=args.token,
        page_size=args.page_size,
        prefetch=not args.no_prefetch,
        api_version=args.api_version,
        **extra,
    )
    results = []
    with Warehouse.open(os.environ["LIGHTSPEED_BENCH_DSN"], DbSettings(schema=args.schema)) as warehouse:
        for name in args.entities.split(","):
            with LightspeedClient(config) as client:
                r = sync_entity(reg.get(name).at(args.api_version), client, warehouse, full_refresh=args.full_refresh)
            results.append({**r.as_dict(), "written": r.written})
    print(json.dumps({"results": results, "rss_peak_mb": round(peak_rss_mb(), 1)}))


if __name__ == "__main__":
    main()
