"""The package's layers, read from its imports and its code (no module is run).

* the API side (`api/`: transport, OAuth, pacing, paginators) imports nothing of the database
  side (`warehouse/`) and nothing of Airflow; the token vault is injected;
* the database side imports nothing of Airflow or of the Airflow-side modules, and only the
  API side's OAuth types (the vault it implements);
* the registry imports nothing; only the DAG factory imports the operators;
* only the warehouse touches a connection (`.conn`, `.transaction()`, `set_config`), and only
  `connection.py` applies the per-transaction settings; its SQL names no table bare;
* only the settings module reads the environment.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "plugins" / "lightspeed_pipeline"
AIRFLOW_SIDE = {"hooks", "operators", "factory", "alerts", "assets", "ui", "connections", "taskinfo"}
SERVICES = {"sync", "identity", "validate", "report", "health"}


def module_name(path: Path) -> str:
    return ".".join(("lightspeed_pipeline", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def imports(name: str) -> set[str]:
    """Every module `name` imports, at any depth (functions, TYPE_CHECKING blocks included)."""
    out: set[str] = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def ours(name: str) -> set[str]:
    """The package's own modules `name` imports (a `from x import y` counts y when it is a module)."""
    return {m for m in imports(name) if m in MODULES}


def top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def in_layer(layer: str) -> list[str]:
    return [n for n in MODULES if n.startswith(f"lightspeed_pipeline.{layer}")]


def test_the_layers_exist() -> None:
    assert len(in_layer("api.")) >= 4 and len(in_layer("warehouse.")) >= 8


def test_the_api_side_imports_nothing_of_the_database_side_or_of_airflow() -> None:
    allowed = {"lightspeed_pipeline.entities", "lightspeed_pipeline.records", "lightspeed_pipeline.metrics"}
    for name in in_layer("api"):
        mine = ours(name)
        foreign = {m for m in mine if not m.startswith("lightspeed_pipeline.api") and m not in allowed}
        assert not foreign, f"{name} imports {sorted(foreign)}"
        assert not {"airflow", "psycopg"} & top(imports(name)), name


def test_the_database_side_imports_nothing_of_airflow_or_of_the_services() -> None:
    allowed = {
        "lightspeed_pipeline.entities",
        "lightspeed_pipeline.records",
        "lightspeed_pipeline.mapping",
        "lightspeed_pipeline.api.oauth",  # the token vault implements the API side's protocol
    }
    for name in in_layer("warehouse"):
        foreign = {m for m in ours(name) if not m.startswith("lightspeed_pipeline.warehouse") and m not in allowed}
        assert not foreign, f"{name} imports {sorted(foreign)}"
        assert not {"airflow", "requests"} & top(imports(name)), name


def test_the_registry_imports_nothing_and_only_the_factory_imports_the_operators() -> None:
    assert ours("lightspeed_pipeline.entities") == set()
    stdlib = {"__future__", "graphlib", "collections", "dataclasses", "typing"}
    assert top(imports("lightspeed_pipeline.entities")) <= stdlib
    importers = {n for n in MODULES if "lightspeed_pipeline.operators" in ours(n)}
    assert importers == {"lightspeed_pipeline.factory"}


def test_the_pure_modules_stay_pure() -> None:
    for name in ("records", "mapping", "settings", "charts", "metrics", "taskinfo"):
        heavy = {"psycopg", "requests"} & top(imports(f"lightspeed_pipeline.{name}"))
        assert not heavy, name
        assert not {m for m in ours(f"lightspeed_pipeline.{name}") if ".warehouse" in m or ".api." in m}, name


def _calls(tree: ast.AST, attr: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == attr
    ]


def test_only_the_warehouse_touches_a_connection() -> None:
    for name, tree in TREES.items():
        if name.startswith("lightspeed_pipeline.warehouse"):
            continue
        conn = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("conn", "_conn")]
        assert not conn, f"{name} uses a connection at lines {conn}"
        assert not _calls(tree, "transaction"), f"{name} opens a transaction itself"
        assert not _calls(tree, "execute"), f"{name} executes SQL itself"


def test_one_transaction_prologue() -> None:
    applying = [n for n in in_layer("warehouse") if "set_config('search_path'" in MODULES[n].read_text()]
    assert applying == ["lightspeed_pipeline.warehouse.connection"]
    raw = [n for n in in_layer("warehouse") if re.search(r"\b_?conn\.transaction\(", MODULES[n].read_text())]
    assert raw == ["lightspeed_pipeline.warehouse.connection"]


_BARE_TABLE = re.compile(r"\b(FROM|INTO|UPDATE|JOIN|TABLE|ON|TRUNCATE)\s+(sync_|lightspeed_|schema_)\w+", re.I)


def test_the_warehouse_sql_names_no_table_bare() -> None:
    """Table names come from `Warehouse.table()` (schema-qualified), never from the search_path."""
    for name in in_layer("warehouse"):
        for node in ast.walk(TREES[name]):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found = _BARE_TABLE.search(node.value)
                assert not found, f"{name}:{node.lineno}: {found.group(0)!r}"


def test_only_the_settings_module_reads_the_environment() -> None:
    sources = {
        **{n: t for n, t in TREES.items()},
        "dags": ast.parse((ROOT / "dags" / "lightspeed_sync.py").read_text()),
    }
    sources["plugin"] = ast.parse((ROOT / "plugins" / "lightspeed_ui.py").read_text())
    for name, tree in sources.items():
        if name == "lightspeed_pipeline.settings":
            continue
        reads = [
            n.lineno
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv", "putenv")
        ]
        assert not reads, f"{name} reads the environment at lines {reads}"
