"""`make demo`: a throwaway PostgreSQL and simulator, one full `airflow dags test` run, a summary.

Everything it starts is stopped before it exits (also on Ctrl-C or failure).
Environment: LIGHTSPEED_DEMO_SCALE (default `demo`), LIGHTSPEED_DEMO_DSN (use this
database instead of a throwaway one; tables go to LIGHTSPEED_SCHEMA).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))


def airflow_env(home: Path, api_conn: str, pg_dsn: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_LIGHTSPEED_API": api_conn,
            "AIRFLOW_CONN_LIGHTSPEED_POSTGRES": pg_dsn,
        }
    )
    return env


def airflow(env: dict[str, str], *args: str, log: Path | None = None) -> None:
    cmd = [str(Path(sys.executable).parent / "airflow"), *args]
    if log is None:
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return
    with log.open("w") as out:
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text().splitlines()[-40:]
        raise SystemExit(
            f"`airflow {' '.join(args)}` failed (exit {proc.returncode}); last lines of {log}:\n" + "\n".join(tail)
        )


def print_report(dsn: str) -> None:
    from lightspeed_pipeline.settings import target_schema
    from lightspeed_pipeline.warehouse import connect

    schema = target_schema()
    with connect(dsn) as conn:
        conn.execute("SELECT set_config('search_path', %s, false)", (f'"{schema}"',))
        row = conn.execute(
            "SELECT status, metadata FROM sync_log WHERE action = 'run_summary' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            print("no run summary found in sync_log")
            return
        status, meta = row
        print(f"\nRun {meta.get('run_id')}: {status}\n")
        print("\n".join(meta.get("table", [])) or _table(meta))
        print("\nRows per table:")
        for (table,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_name LIKE 'lightspeed\\_%%' ORDER BY table_name",
            (schema,),
        ).fetchall():
            count = conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]  # type: ignore[index]
            print(f"  {table:<32} {count:>8}")
        print("\nsync_health:")
        cur = conn.execute(
            "SELECT entity_type, sync_status, status, last_version, last_successful_sync FROM sync_health"
            " ORDER BY entity_type"
        )
        print(f"  {'entity':<20} {'health':<8} {'status':<8} {'last_version':>13}  last_successful_sync")
        for entity, health, st, version, last in cur.fetchall():
            print(f"  {entity:<20} {health:<8} {st:<8} {version or '':>13}  {last:%Y-%m-%d %H:%M:%S %Z}")


def _table(meta: dict[str, Any]) -> str:
    lines = [f"{'entity':<20} {'state':<10} {'records':>9} {'seconds':>8} {'rows/s':>9} {'requests':>8}"]
    for name, info in meta.get("entities", {}).items():
        lines.append(
            f"{name:<20} {info['state']:<10} {info['records']:>9} {info['duration_s']:>8.2f}"
            f" {info['rows_per_s']:>9.0f} {info['requests']:>8}"
        )
    return "\n".join(lines)


def main() -> int:
    from devtools.pg import ThrowawayPostgres
    from devtools.simproc import SimulatorProcess

    started = time.monotonic()
    scale = os.environ.get("LIGHTSPEED_DEMO_SCALE", "demo")
    work = Path(tempfile.mkdtemp(prefix="lightspeed-demo-"))
    pg = None
    sim = None
    try:
        dsn = os.environ.get("LIGHTSPEED_DEMO_DSN")
        if not dsn:
            pg = ThrowawayPostgres()
            dsn = pg.start()
            print(f"PostgreSQL: {pg.version} on port {pg.port} (throwaway)")
        sim = SimulatorProcess(scale=scale, max_page_size=1000)
        print(f"Lightspeed simulator: {sim.url} (scale {scale})")
        env = airflow_env(work / "airflow", sim.airflow_connection(), dsn)
        print("Preparing Airflow's metadata database ...")
        airflow(env, "db", "migrate")
        airflow(env, "pools", "set", "lightspeed_api", "4", "Lightspeed API: shared request budget")
        print("Running `airflow dags test lightspeed_sync` ...")
        t0 = time.monotonic()
        log = work / "dags-test.log"
        airflow(env, "dags", "test", "lightspeed_sync", log=log)
        print(f"DAG run took {time.monotonic() - t0:.1f} s")
        os.environ.setdefault("LIGHTSPEED_SCHEMA", "public")
        print_report(dsn)
    finally:
        if sim is not None:
            sim.stop()
        if pg is not None:
            pg.stop()
        keep = os.environ.get("LIGHTSPEED_DEMO_KEEP_LOGS")
        if keep:
            shutil.copytree(work, keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmake demo finished in {time.monotonic() - started:.1f} s; nothing left running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
