"""A real Airflow deployment on this machine, in the topology of docker-compose.yaml.

`api-server`, `scheduler`, `dag-processor` and `triggerer` run as separate processes with
the LocalExecutor and the metadata database on PostgreSQL, initialised the way the compose
file's `airflow-init` does it (`airflow db migrate`, `airflow pools import pools.json`; once
per server, then copied).
The end-to-end tests drive it through the REST API, as a data team's tooling would. Every
process is stopped on exit, also when the test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL = {"success", "failed"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Settings of docker-compose.yaml that name container paths, hosts or secrets: the native
# stack sets its own.
_CONTAINER_ONLY = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",  # a fixed port (8974) in the container
}


def compose_settings(compose_file: Path = ROOT / "docker-compose.yaml") -> dict[str, str]:
    """The Airflow settings (`AIRFLOW__*`) docker-compose.yaml gives every service, with
    `${VAR:-default}` taken as its default, so the native stack runs as the containers do."""
    import yaml

    env = yaml.safe_load(compose_file.read_text())["x-airflow-common"]["environment"]
    out: dict[str, str] = {}
    for key, value in env.items():
        if not key.startswith("AIRFLOW__") or key in _CONTAINER_ONLY or value is None:
            continue
        value = re.sub(r"\$\{[A-Za-z0-9_]+:-([^}]*)\}", r"\1", str(value))
        if "${" not in value:
            out[key] = value
    return out


def _metadata_url(dsn: str, dbname: str) -> str:
    """A SQLAlchemy URL (psycopg 3 driver) for `dbname` on the server `dsn` points at."""
    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = info.get("user") or "postgres"
    password = f":{info['password']}" if info.get("password") else ""
    host = info.get("host") or "127.0.0.1"
    if str(host).startswith("/"):
        return f"postgresql+psycopg://{user}{password}@/{dbname}?host={host}&port={info.get('port') or 5432}"
    return f"postgresql+psycopg://{user}{password}@{host}:{info.get('port') or 5432}/{dbname}"


class AirflowStack:
    """Airflow 3 processes over a metadata database created for this stack alone."""

    def __init__(
        self,
        pg_dsn: str,
        env: dict[str, str | None],
        *,
        user: str = "admin",
        password: str | None = None,
        root: Path = ROOT,
        settings: dict[str, str] | None = None,
        extra_dags: dict[str, str] | None = None,
    ) -> None:
        """`root`: the checkout whose dags/ and plugins/ to deploy (bench/scheduler.py compares two);
        `settings`: Airflow settings (default: docker-compose.yaml's, `compose_settings()`);
        `extra_dags`: file name -> source of DAG files deployed beside the project's (a
        downstream DAG a test schedules on an Asset); an `env` value of None unsets that variable."""
        self.pg_dsn = pg_dsn
        self.root = root
        self.home = Path(tempfile.mkdtemp(prefix="lightspeed-e2e-airflow-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.user = user
        self.password = password or uuid.uuid4().hex
        self.dbname = f"airflow_e2e_{uuid.uuid4().hex[:8]}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env.update(compose_settings() if settings is None else settings)
        for key, value in env.items():  # None: leave the variable unset
            if value is None:
                self.env.pop(key, None)
            else:
                self.env[key] = value
        dags_folder = root / "dags"
        if extra_dags:
            dags_folder = self.home / "dags"
            dags_folder.mkdir()
            for path in (root / "dags").glob("*.py"):
                (dags_folder / path.name).symlink_to(path)
            for name, source in extra_dags.items():
                (dags_folder / name).write_text(source)
        self.env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _metadata_url(pg_dsn, self.dbname),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex * 2,
                # One fernet key for every process, as compose's shared airflow.cfg gives them: left
                # to each process, the one that writes airflow.cfg first generates a key that a
                # process started a moment earlier never reads (the triggerer then cannot decrypt
                # the deadline triggers the scheduler stored: seen once in CI).
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            }
        )
        self.env.setdefault("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "5")

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> AirflowStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=True
        )

    def _template(self) -> str:
        """A metadata database initialised the way docker-compose.yaml's `airflow-init` does it
        (`airflow db migrate`, `airflow pools import pools.json`), made once per server, Airflow
        version and pools.json: each stack copies it (CREATE DATABASE ... TEMPLATE, well under a
        second) instead of spending about 10 s on the same migration."""
        import hashlib

        import psycopg
        from airflow import __version__ as airflow_version

        digest = hashlib.sha256((self.root / "pools.json").read_bytes() + airflow_version.encode()).hexdigest()[:12]
        name = f"airflow_e2e_template_{digest}"
        with psycopg.connect(self.pg_dsn, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return name
            building = f"{name}_{uuid.uuid4().hex[:6]}"
            conn.execute(f'CREATE DATABASE "{building}"')
        env = {**self.env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _metadata_url(self.pg_dsn, building)}
        try:
            for args in (("db", "migrate"), ("pools", "import", str(self.root / "pools.json"))):
                subprocess.run(
                    [str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=300, check=True
                )
            with psycopg.connect(self.pg_dsn, autocommit=True) as conn:  # publish it whole, or not at all
                try:
                    conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
                except psycopg.errors.DuplicateDatabase:  # another stack published it meanwhile: use that
                    conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        except BaseException:
            with psycopg.connect(self.pg_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            raise
        return name

    def start(self) -> None:
        import psycopg

        template = self._template()
        with psycopg.connect(self.pg_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}" TEMPLATE "{template}"')
        (self.home / "passwords.json").write_text(json.dumps({self.user: self.password}))
        # docker-compose.yaml mounts ./config at $AIRFLOW_HOME/config: the same file here.
        local_settings = self.root / "config" / "airflow_local_settings.py"
        if local_settings.exists():
            (self.home / "config").mkdir(exist_ok=True)
            shutil.copy(local_settings, self.home / "config" / local_settings.name)
        for name in PROCESSES:
            args = [name, "--port", str(self.port)] if name == "api-server" else [name]
            log = open(self.home / f"{name}.log", "wb")  # closed when the process is
            self.procs[name] = subprocess.Popen(
                [str(BIN / "airflow"), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait(lambda: self._healthy(), 120, "the API server to answer /api/v2/monitor/health")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs.clear()
        try:
            import psycopg

            with psycopg.connect(self.pg_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        except Exception:  # the server itself may be gone already
            pass
        if os.environ.get("LIGHTSPEED_E2E_KEEP_LOGS"):
            print(f"e2e Airflow logs kept in {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)

    def logs(self, name: str, tail: int = 60) -> str:
        path = self.home / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:]) if path.exists() else ""

    def _healthy(self) -> bool:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{self.logs(name)}")
        try:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    @staticmethod
    def _wait(predicate: Any, timeout: float, what: str, every: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")

    # -- REST API ----------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            r = requests.post(
                f"{self.url}/auth/token", json={"username": self.user, "password": self.password}, timeout=10
            )
            r.raise_for_status()
            self._token = str(r.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}"} if auth else {}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.api(method, path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        def parsed() -> bool:
            return self.api("GET", f"/api/v2/dags/{dag_id}").status_code == 200

        self._wait(parsed, timeout, f"the dag-processor to parse {dag_id}\n{self.logs('dag-processor')}")

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return str(self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "id"})["dag_runs"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"))

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            run = self.run(dag_id, run_id)
            return run if run["state"] in TERMINAL else None

        return dict(self._wait(done, timeout, f"run {run_id} to finish\n{self.logs('scheduler')}", every=0.1))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        body = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def clear(self, dag_id: str, run_id: str, task_ids: list[str], *, downstream: bool = True) -> list[str]:
        body = {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": task_ids,
            "include_downstream": downstream,
            "include_upstream": False,
            "only_failed": False,
            "reset_dag_runs": True,
        }
        cleared = self.call("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)
        return [ti["task_id"] for ti in cleared["task_instances"]]
