"""Supabase exposure (row-level security), the audit trail, and secrets kept out of every output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from lightspeed_pipeline.warehouse.security import project_tables

from tests.conftest import FAST_RETRIES, ROOT, TOKEN
from tests.integration.helpers import run_dag

OWNER = "lightspeed_sync_owner"
VIEWS = (
    "daily_sales_summary",
    "low_stock_products",
    "sync_health",
    "daily_transactions_by_outlet",
    "inventory_by_outlet",
    "customer_growth_by_month",
)


@pytest.fixture
def supabase_roles(pg_dsn: str) -> str:
    """Supabase's API roles and default grants (created when missing), and a non-superuser sync role.

    Returns a DSN that connects as the sync role.
    """
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for role, login in (("anon", False), ("authenticated", False), ("service_role", False), (OWNER, True)):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(f'CREATE ROLE "{role}" {"LOGIN" if login else "NOLOGIN"}')
        dbname = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(f'GRANT CREATE ON DATABASE "{dbname}" TO "{OWNER}"')
        # What Supabase does for every new object: grant it to the API roles.
        conn.execute(f'ALTER DEFAULT PRIVILEGES FOR ROLE "{OWNER}" GRANT ALL ON TABLES TO anon, authenticated')
        conn.execute(f'ALTER DEFAULT PRIVILEGES FOR ROLE "{OWNER}" GRANT USAGE ON SCHEMAS TO anon, authenticated')
    parts = urlsplit(pg_dsn)
    netloc = f"{OWNER}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def count_as(conn: Any, role: str, relation: str, schema: str, outlet: str | None = None) -> int | str:
    with conn.transaction():
        conn.execute(f'SET LOCAL ROLE "{role}"')
        if outlet is not None:
            conn.execute("SELECT set_config('app.current_outlet_id', %s, true)", (outlet,))
        try:
            with conn.transaction():
                return conn.execute(f'SELECT count(*) FROM "{schema}"."{relation}"').fetchone()[0]  # type: ignore[index]
        except psycopg.errors.InsufficientPrivilege:
            return "denied"


def test_row_level_security_for_supabase_roles(
    supabase_roles: str, simulator: Any, pg_dsn: str, schema: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", simulator.airflow_connection(**FAST_RETRIES))
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", supabase_roles)
    assert run_dag().state == "success"  # the sync's own (non-superuser) role writes everything, RLS on
    state = simulator.state()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = 'lightspeed_sales'", (schema,)
        ).fetchone()
        assert owner == (OWNER,)
        rls = dict(
            conn.execute(
                "SELECT c.relname, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = 'r'",
                (schema,),
            ).fetchall()
        )
        assert set(rls) == set(project_tables()) and all(rls.values())
        counts = {t: count_as(conn, "postgres", t, schema) for t in ("lightspeed_sales", "lightspeed_products")}
        assert counts == {"lightspeed_sales": len(state["sales"]), "lightspeed_products": len(state["products"])}

        # anon: nothing at all, tables and views alike.
        for relation in [*project_tables(), *VIEWS]:
            assert count_as(conn, "anon", relation, schema) in (0, "denied"), relation
        assert count_as(conn, "anon", "lightspeed_oauth_tokens", schema) == "denied"

        # authenticated with an outlet: that outlet's rows of the outlet-scoped tables only.
        outlet = state["outlets"][0]["id"]
        sales = [s for s in state["sales"] if s["outlet_id"] == outlet]
        expected = {
            "lightspeed_sales": len(sales),
            "lightspeed_sale_line_items": sum(len(s["line_items"]) for s in sales),
            "lightspeed_sale_payments": sum(len(s["payments"]) for s in sales),
            "lightspeed_inventory": sum(1 for i in state["inventory"] if i["outlet_id"] == outlet),
            "lightspeed_registers": sum(1 for r in state["registers"] if r["outlet_id"] == outlet),
        }
        assert 0 < expected["lightspeed_sales"] < len(state["sales"])
        for table, n in expected.items():
            assert count_as(conn, "authenticated", table, schema, outlet) == n, table
            assert count_as(conn, "authenticated", table, schema) == 0, table  # no outlet set: nothing
        others = set(project_tables()) - set(expected) - {"lightspeed_oauth_tokens"}
        for table in others:
            assert count_as(conn, "authenticated", table, schema, outlet) == 0, table
        with conn.transaction():
            conn.execute('SET LOCAL ROLE "authenticated"')
            conn.execute("SELECT set_config('app.current_outlet_id', %s, true)", (outlet,))
            outlets_seen = {r[0] for r in conn.execute(f'SELECT outlet_id FROM "{schema}".daily_sales_summary')}
            assert outlets_seen == {outlet}
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"INSERT INTO \"{schema}\".lightspeed_sales (id, data) VALUES ('x', '{{}}')")


def test_customer_changes_are_audited_in_the_same_transaction(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None
) -> None:
    assert run_dag(entities=["customer_groups", "customers", "products"]).state == "success"
    n_customers = len(simulator.state()["customers"])
    audit = f'"{schema}".lightspeed_audit_log'
    ops = Counter(r[0] for r in db.execute(f"SELECT operation FROM {audit}").fetchall())
    assert ops == {"INSERT": n_customers}
    inserted = dict(db.execute(f"SELECT row_id, new_values FROM {audit}").fetchall())
    assert all(inserted[c["id"]] == {"version": c["version"]} for c in simulator.state()["customers"])
    before = {c["id"]: c for c in simulator.state()["customers"]}
    changed = simulator.mutate(seed=5, update={"customers": 4, "products": 3}, delete={"customers": 2})["changed"]
    assert run_dag(entities=["customer_groups", "customers", "products"]).state == "success"
    rows = db.execute(
        f"SELECT row_id, table_name, changed_by, old_values, new_values, txid FROM {audit} WHERE operation = 'UPDATE'"
    ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(changed["customers"])
    assert {r[1] for r in rows} == {"lightspeed_customers"} and {r[2] for r in rows} == {"postgres"}
    after = {c["id"]: c for c in simulator.state()["customers"]}
    for row_id, _, _, old, new, txid in rows:
        assert old["version"] == before[row_id]["version"] and new["version"] == after[row_id]["version"]
        if after[row_id].get("deleted_at"):  # appeared (or was null before)
            assert old.get("deleted_at") is None and new["deleted_at"] == after[row_id]["deleted_at"]
        else:
            assert old.get("email") == before[row_id].get("email") and new["email"] == after[row_id]["email"]
        # exactly what changed: each side names the members it holds that differ
        for side, values in ((before[row_id], old), (after[row_id], new)):
            assert values == {k: side[k] for k in side if before[row_id].get(k, ...) != after[row_id].get(k, ...)}
        xmin = db.execute(
            f'SELECT xmin::text::bigint FROM "{schema}".lightspeed_customers WHERE id = %s', (row_id,)
        ).fetchone()[0]  # type: ignore[index]
        assert txid % 2**32 == xmin  # written by the upsert's own transaction


def _secrets_found(haystacks: dict[str, str], secrets: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for where, text in haystacks.items() for name, s in secrets.items() if s in text]


@pytest.mark.parametrize("form", ["password-json", "extra-deprecated"])
def test_no_secret_reaches_logs_sync_tables_errors_or_xcom(
    simulator: Any, pg_dsn: str, schema: str, tmp_path: Path, db: Any, form: str
) -> None:
    """Both OAuth forms: the secrets as a JSON password (recommended), and in extra (deprecated)."""
    password = "Db-Pa55word-never-printed"
    parts = urlsplit(pg_dsn)  # trust auth: the password is accepted and ignored, but it is in the DSN
    dsn = urlunsplit((parts.scheme, f"{parts.username}:{password}@{parts.hostname}:{parts.port}", parts.path, "", ""))
    client = {
        "client_id": "ls-client-9",
        "client_secret": "Cl1ent-Secret-never-printed",
        "refresh_token": "Rt-seed-never-printed",
    }
    simulator.setup_oauth(**client, access_token=TOKEN)
    simulator.expire_access_token()  # forces a refresh: rotated tokens flow through the code too
    simulator.faults(resources={"taxes": 400})  # and a failure, so error messages are written
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_LIGHTSPEED_POSTGRES=dsn,
        LIGHTSPEED_SCHEMA=schema,
        LIGHTSPEED_TASK_RETRIES="0",
    )
    if form == "extra-deprecated":
        env["AIRFLOW_CONN_LIGHTSPEED_API"] = simulator.airflow_connection(**FAST_RETRIES, **client)
    else:
        oauth_password = json.dumps({**client, "access_token": TOKEN})
        conn = {"conn_type": "http", "host": simulator.url, "password": oauth_password, "extra": {"timeout": 30}}
        env["AIRFLOW_CONN_LIGHTSPEED_API"] = json.dumps(conn)
        env.update({f"LIGHTSPEED_{k.upper()}": str(v) for k, v in FAST_RETRIES.items()})
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], cwd=tmp_path, env=env, check=True, capture_output=True)
    proc = subprocess.run([airflow, "dags", "test", "lightspeed_sync"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode != 0  # taxes failed (on purpose)
    oauth = simulator.oauth_state()
    assert oauth["refreshes"] >= 1
    secrets = {
        "initial access token": TOKEN,
        "rotated access token": oauth["access_token"],
        "rotated refresh token": oauth["refresh_token"],
        "seed refresh token": client["refresh_token"],
        "client secret": client["client_secret"],
        "database password": password,
        "DSN": dsn,
    }
    haystacks = {"stdout": proc.stdout, "stderr": proc.stderr}
    for path in (tmp_path / "airflow").rglob("*"):
        if path.is_file():
            haystacks[str(path.relative_to(tmp_path))] = path.read_bytes().decode("utf-8", "replace")
    for table in ("sync_log", "sync_state", "sync_rejects", "sync_validation"):
        rows = db.execute(f'SELECT t::text FROM "{schema}"."{table}" t').fetchall()
        haystacks[table] = "\n".join(r[0] for r in rows)
    assert any("airflow.db" in k for k in haystacks)  # XCom lives there
    assert "taxes" in haystacks["sync_state"] and "HTTP 400" in haystacks["sync_log"]
    assert _secrets_found(haystacks, secrets) == []
    json.dumps(haystacks["sync_log"])  # readable text, so the search above is meaningful
    simulator.faults()
