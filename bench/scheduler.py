"""The fixed cost of a run under a real scheduler: no-op runs of the DAG, timed.

Starts the deployment's processes natively (devtools/airflow_stack.py: api-server,
scheduler, dag-processor, triggerer, LocalExecutor, metadata on PostgreSQL), syncs the
simulator once, then triggers `--runs` no-op runs (nothing changed: 1-2 requests per entity,
0 rows) and prints, per run, the wall time from the trigger request to the run's end, the
worker tasks it started and their mean duration, and the CPU seconds the Airflow processes
used; each with docker-compose.yaml's Airflow settings and with Airflow's defaults.
Then it times rerunning one entity both ways a data team can: clearing the customers group
(with what follows it) and a run with `entities=["customers"]`. It prints the targets these
figures answer (issue 10: a no-op run at most half the 14 s of the former DAG shape; the
one-entity run at most 1.2 x clearing the group): timing targets live here, not in the tests.
`--compare REF` measures the DAG of another git revision the same way (in a temporary
worktree), so a change to the DAG's shape is judged on the same machine, minutes apart.

    .venv/bin/python bench/scheduler.py [--runs 3] [--compare <git-ref>] [--out bench/scheduler.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "plugins"))

from devtools.airflow_stack import AirflowStack, compose_settings  # noqa: E402
from devtools.simproc import SimulatorProcess  # noqa: E402

DAG_ID = "lightspeed_sync"
TICK = os.sysconf("SC_CLK_TCK")
IDLE_S = 30
NOOP_BEFORE_S = 14.0  # a no-op run with the former DAG shape (30 tasks), on this 2-core machine


def _cpu_s(session_ids: set[int]) -> float:
    """CPU seconds (own and reaped children) of every live process in these sessions."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in session_ids:
            total += sum(int(x) for x in fields[11:15])
    return total / TICK


def measure(root: Path, pg_dsn: str, runs: int, settings: dict[str, str]) -> dict[str, Any]:
    import psycopg

    schema = f"bench_sched_{uuid.uuid4().hex[:8]}"
    with SimulatorProcess(token="bench-token") as sim:
        env = {
            "AIRFLOW_CONN_LIGHTSPEED_API": sim.airflow_connection(page_size=200),
            "AIRFLOW_CONN_LIGHTSPEED_POSTGRES": pg_dsn,
            "LIGHTSPEED_SCHEMA": schema,
            "LIGHTSPEED_TASK_RETRIES": "0",
        }
        try:
            with AirflowStack(pg_dsn, env, root=root, settings=settings) as st:
                st.wait_for_dag(DAG_ID)
                st.unpause(DAG_ID)
                first = st._wait(lambda: st.runs(DAG_ID), 60, "the scheduled run")[0]["dag_run_id"]
                if st.wait_run(DAG_ID, first)["state"] != "success":
                    raise RuntimeError(f"the first run failed:\n{st.logs('scheduler')}")
                sessions = {os.getsid(p.pid) for p in st.procs.values()}
                out = []
                for _ in range(runs):
                    time.sleep(2)  # let the scheduler go idle, as before a daily run
                    cpu0, began = _cpu_s(sessions), time.monotonic()
                    run_id = st.trigger(DAG_ID)
                    run = st.wait_run(DAG_ID, run_id)
                    wall, cpu = time.monotonic() - began, _cpu_s(sessions) - cpu0
                    tis = [
                        ti
                        for ti in st.task_instances(DAG_ID, run_id).values()
                        if ti["operator"] != "EmptyOperator" and ti["duration"] is not None
                    ]
                    out.append(
                        {
                            "state": run["state"],
                            "wall_s": round(wall, 2),
                            "worker_tasks": len(tis),
                            "task_duration_mean_s": round(statistics.mean(float(t["duration"]) for t in tis), 3),
                            "airflow_cpu_s": round(cpu, 2),
                        }
                    )
                    print(f"  {root.name}: {out[-1]}", flush=True)
                rerun = _rerun_one_entity(st, run_id)
                print(f"  rerun customers: {rerun}", flush=True)
                # What the setting costs between runs: the processes' CPU while nothing runs.
                time.sleep(3)
                cpu0 = {n: _cpu_s({os.getsid(p.pid)}) for n, p in st.procs.items()}
                time.sleep(IDLE_S)
                idle = {n: round(100 * (_cpu_s({os.getsid(p.pid)}) - cpu0[n]) / IDLE_S, 1) for n, p in st.procs.items()}
                print(f"  idle CPU, % of one core: {idle}", flush=True)
        finally:
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    walls = [r["wall_s"] for r in out]
    return {
        "runs": out,
        "wall_s_median": statistics.median(walls),
        "wall_s_min": min(walls),
        "rerun_one_entity": rerun,
        "idle_cpu_pct_of_one_core": idle,
    }


def _rerun_one_entity(st: AirflowStack, run_id: str, rounds: int = 3) -> dict[str, Any]:
    """Seconds to rerun customers by clearing its group (with downstream) in `run_id`, and by a
    run with `entities=["customers"]`, each from the request to the run's end; `rounds` of each,
    alternating which goes first, medians."""
    clear_s: list[float] = []
    one_s: list[float] = []
    states: set[str] = set()

    def clear() -> None:
        time.sleep(2)  # the scheduler idle, as before a person's click
        began = time.monotonic()
        st.clear(DAG_ID, run_id, ["customers.sync"])
        states.add(st.wait_run(DAG_ID, run_id)["state"])
        clear_s.append(time.monotonic() - began)

    def one() -> None:
        time.sleep(2)
        began = time.monotonic()
        states.add(st.wait_run(DAG_ID, st.trigger(DAG_ID, {"entities": ["customers"]}))["state"])
        one_s.append(time.monotonic() - began)

    for i in range(rounds):
        for step in (clear, one) if i % 2 == 0 else (one, clear):
            step()
    return {
        "states": sorted(states),
        "clear_group_s": round(statistics.median(clear_s), 2),
        "one_entity_run_s": round(statistics.median(one_s), 2),
        "clear_group_s_all": [round(x, 2) for x in clear_s],
        "one_entity_run_s_all": [round(x, 2) for x in one_s],
    }


def targets(results: dict[str, Any]) -> list[str]:
    """The timing targets, met or missed, for the current tree with compose's settings."""
    current = results.get("current, compose settings")
    if not current:
        return []
    noop, rerun = current["wall_s_min"], current["rerun_one_entity"]
    lines = [
        f"no-op run, best of {len(current['runs'])}: {noop:.2f} s; target <= {NOOP_BEFORE_S / 2:.1f} s"
        f" (half the former {NOOP_BEFORE_S:.0f} s): {'met' if noop <= NOOP_BEFORE_S / 2 else 'MISSED'}",
        f"one-entity run {rerun['one_entity_run_s']:.2f} s vs clearing the group {rerun['clear_group_s']:.2f} s"
        " (medians):"
        f" {rerun['one_entity_run_s'] / rerun['clear_group_s']:.2f} x; target <= 1.2 x:"
        f" {'met' if rerun['one_entity_run_s'] <= 1.2 * rerun['clear_group_s'] else 'MISSED'}",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", help="a git revision to measure the same way (e.g. the commit before a change)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "scheduler.json"))
    args = parser.parse_args()

    from devtools.pg import ThrowawayPostgres

    results: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "what": "no-op run of lightspeed_sync under api-server + scheduler + dag-processor + triggerer, LocalExecutor",
    }
    dsn = os.environ.get("LIGHTSPEED_TEST_DSN")
    with ThrowawayPostgres() if not dsn else nullcontext() as pg:
        dsn = dsn or pg.dsn
        assert dsn
        setups = {"compose settings": compose_settings(), "airflow defaults": {}}
        trees = {"current": ROOT}
        git = ["git", "-C", str(ROOT)]
        if args.compare:
            rev = subprocess.run(
                [*git, "rev-parse", "--short", args.compare], capture_output=True, text=True, check=True
            ).stdout.strip()
            trees[f"revision {rev}"] = Path(tempfile.mkdtemp(prefix="lightspeed-bench-")) / rev
            subprocess.run([*git, "worktree", "add", "--detach", str(trees[f"revision {rev}"]), rev], check=True)
        try:
            for name, tree in trees.items():
                for setup, settings in setups.items():
                    print(f"{name}, {setup} {settings}:", flush=True)
                    results[f"{name}, {setup}"] = measure(tree, dsn, args.runs, settings)
        finally:
            for tree in trees.values():
                if tree != ROOT:
                    subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)
    results["targets"] = targets(results)
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=2))
    print("\n".join(results["targets"]))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
