"""Run the real DAG once in this process: `python -m tests.integration.run_dag_proc '{"entities": [...]}'`.

Used by tests that must kill the worker (SIGKILL) or run two syncs at once. The
environment (AIRFLOW_HOME, connections, LIGHTSPEED_SCHEMA) comes from the parent test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

if __name__ == "__main__":
    from tests.integration.helpers import run_dag

    conf = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    run = run_dag(**conf)
    print(json.dumps({"state": str(run.state), "run_id": run.run_id}), flush=True)
    sys.exit(0 if run.state == "success" else 1)
