"""The deployment files (docker-compose.yaml, Dockerfile, .dockerignore, .env.example) against the code.

No Docker needed: the compose file is read as YAML and checked against the repo's real files, so a
moved folder, a new LIGHTSPEED_* setting, a renamed pool or a new Airflow pin fails here.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
COMMON: dict[str, Any] = COMPOSE["x-airflow-common"]
COMMON_ENV: dict[str, Any] = COMMON["environment"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()

CORE = (
    "postgres",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-init",
)
AIRFLOW = (*CORE[1:], "airflow-cli")
DEMO = ("lightspeed-target", "lightspeed-simulator")
AIRFLOW_HOME = PurePosixPath("/opt/airflow")  # the official image's AIRFLOW_HOME (Dockerfile may override)

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}; `$$` is a literal `$` for the container.
_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
# A whole value that is one variable with no default worth a secret: ${X}, ${X:-}, ${X:?message}.
_PURE_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-|:?\?[^}]*)?\}$")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|PRIVATE|CREDENTIAL|_KEY$|^AIRFLOW_CONN_", re.I)
_ENV_LINE = re.compile(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_LIGHTSPEED_NAME = re.compile(r"\bLIGHTSPEED_[A-Z][A-Z0-9_]*\b")


def interpolate(value: str) -> str:
    """What compose makes of `value` with no variable set (defaults applied)."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return m.group(3) if m.group(2) in ("-", ":-") else ""

    return _INTERPOLATION.sub(one, value)


def referenced_variables(text: str) -> set[str]:
    return {m.group(1) for m in _INTERPOLATION.finditer(text) if m.group(0) != "$$"}


def mounts(service: dict[str, Any]) -> dict[str, PurePosixPath]:
    """Bind mounts of a service: repo-relative source -> container path."""
    out = {}
    for spec in service.get("volumes", []):
        source, target = interpolate(spec).split(":")[:2]
        if source.startswith((".", "/")):
            out[str((ROOT / source).resolve().relative_to(ROOT))] = PurePosixPath(target)
    return out


def container_port(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[-1].split("/")[0]) for p in service.get("ports", []) + service.get("expose", [])}


def env_example() -> list[tuple[str, str, bool]]:
    """(name, value, commented) of every `NAME=value` line of .env.example, commented out or not."""
    out = []
    for line in ENV_EXAMPLE.splitlines():
        if m := _ENV_LINE.match(line.strip()):
            value = m.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out.append((m.group(1), value, line.lstrip().startswith("#")))
    return out


def demo_block() -> dict[str, str]:
    """The demo block of .env.example (the lines after its `Demo block` heading)."""
    tail = ENV_EXAMPLE[ENV_EXAMPLE.index("Demo block") :]
    return {m.group(1): m.group(2).strip().strip("'") for line in tail.splitlines() if (m := _ENV_LINE.match(line))}


def module_constant(path: Path, name: str) -> Any:
    """A module-level `NAME = <literal>` of a source file, without importing it (no Airflow import)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.relative_to(ROOT)} has no {name} = <literal>")


def code_sources() -> list[Path]:
    return sorted([*(ROOT / "plugins").rglob("*.py"), *(ROOT / "dags").rglob("*.py")])


def literal_env_names() -> tuple[set[str], bool]:
    """LIGHTSPEED_* names written out in the package's code, and whether it also builds some (f-strings)."""
    names, dynamic = set(), False
    for path in code_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names |= set(_LIGHTSPEED_NAME.findall(node.value))
            elif isinstance(node, ast.JoinedStr) and node.values:
                first = node.values[0]
                if isinstance(first, ast.Constant) and str(first.value) == "LIGHTSPEED_":
                    dynamic = True
    return names, dynamic


# ---- services --------------------------------------------------------------------------------


def test_services_and_profiles() -> None:
    default = {name for name, svc in SERVICES.items() if not svc.get("profiles")}
    assert default == set(CORE)
    for name in DEMO:
        assert SERVICES[name]["profiles"] == ["demo"], name
    assert SERVICES["airflow-cli"]["profiles"], "airflow-cli only on demand, as in the official file"
    assert not {"redis", "airflow-worker", "flower"} & set(SERVICES), "LocalExecutor: no Celery services"
    assert "LocalExecutor" in COMPOSE_TEXT.split("\n---", 1)[0], "the header says why LocalExecutor"


def test_airflow_services_merge_the_common_anchor() -> None:
    root = yaml.compose(COMPOSE_TEXT)
    top = {k.value: v for k, v in root.value}
    common_node = top["x-airflow-common"]
    nodes = {k.value: v for k, v in top["services"].value}
    for name in AIRFLOW:
        merged = [v for k, v in nodes[name].value if k.tag == "tag:yaml.org,2002:merge"]
        assert any(node is common_node for node in merged), f"{name} does not merge *airflow-common"
        svc = SERVICES[name]
        assert svc["image"] == COMMON["image"] and svc["build"] == COMMON["build"], name
        assert svc["volumes"] == COMMON["volumes"], name
        assert COMMON_ENV.items() <= svc["environment"].items(), f"{name} lacks part of the common environment"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert svc["user"] == (COMMON["user"] if name != "airflow-init" else "0:0"), name
    assert COMMON["user"] == "${AIRFLOW_UID:-50000}:0"
    assert (ROOT / COMMON["build"] / "Dockerfile").is_file()
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert SERVICES[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert SERVICES[name]["healthcheck"]["test"], name
    assert "/api/v2/version" in " ".join(SERVICES["airflow-apiserver"]["healthcheck"]["test"])


def test_local_executor_and_execution_api_url() -> None:
    assert COMMON_ENV["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    url = urlsplit(COMMON_ENV["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.hostname == "airflow-apiserver" and url.hostname in SERVICES
    assert url.port in container_port(SERVICES["airflow-apiserver"])
    assert url.path == "/execution/"
    assert COMMON_ENV["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert COMMON_ENV["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "true"


# ---- the code reaches the containers where it looks for itself ---------------------------------


def test_dags_plugins_and_include_are_mounted_where_the_code_expects_them() -> None:
    from lightspeed_pipeline.warehouse import migrations as db

    home = AIRFLOW_HOME
    if m := re.search(r"^ENV\s+AIRFLOW_HOME[= ](\S+)", DOCKERFILE, re.M):
        home = PurePosixPath(m.group(1))
    vols = mounts(COMMON)
    dags = PurePosixPath(COMMON_ENV.get("AIRFLOW__CORE__DAGS_FOLDER") or home / "dags")
    plugins = PurePosixPath(COMMON_ENV.get("AIRFLOW__CORE__PLUGINS_FOLDER") or home / "plugins")
    assert vols.get("dags") == dags and list((ROOT / "dags").glob("*.py"))
    assert vols.get("plugins") == plugins

    # warehouse/migrations.py finds include/sql from its own location (ROOT = a parent of the file): replay that in
    # the container, where the file sits under the plugins mount.
    db_file = Path(db.__file__).resolve()
    depth = db_file.parents.index(db.ROOT)
    container_root = (plugins / db_file.relative_to(ROOT / "plugins")).parents[depth]
    for wanted in (db.SQL_DIR, db.MIGRATIONS_DIR, db.VIEWS_DIR):
        assert wanted.is_dir()
        in_container = container_root / wanted.relative_to(db.ROOT)
        sources = [s for s in vols if wanted.is_relative_to(ROOT / s)]
        assert sources, f"nothing mounts {wanted.relative_to(ROOT)}"
        assert vols[sources[0]] / wanted.relative_to(ROOT / sources[0]) == in_container
    assert vols.get("include") == container_root / "include"
    assert {"logs", "config"} <= vols.keys()


def test_init_migrates_and_creates_the_pool_from_pools_json() -> None:
    pool = module_constant(ROOT / "plugins" / "lightspeed_pipeline" / "settings.py", "POOL")
    pools = json.loads((ROOT / "pools.json").read_text())
    assert pool in pools and pools[pool]["slots"] >= 1
    script = "\n".join(SERVICES["airflow-init"]["command"])
    migrate = re.search(r"\bairflow db migrate\b", script)
    imported = re.search(r"\bairflow pools import (\S+)", script)
    assert migrate and imported and migrate.start() < imported.start()
    assert PurePosixPath(imported.group(1)) == mounts(SERVICES["airflow-init"])["pools.json"]


# ---- secrets and settings come from .env -------------------------------------------------------


def _strings(node: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in _strings(v, str(k))]
    if isinstance(node, list):
        out = [pair for v in node for pair in _strings(v, key)]
        # command lines: `--token VALUE` / `--password VALUE`
        out += [(str(a).lstrip("-"), b) for a, b in itertools.pairwise(node) if str(a).startswith("--")]
        return out
    return [(key, node)]


def test_connections_come_from_variables_and_no_secret_is_written_in_the_file() -> None:
    for conn in ("AIRFLOW_CONN_LIGHTSPEED_API", "AIRFLOW_CONN_LIGHTSPEED_POSTGRES"):
        assert re.fullmatch(rf"\$\{{{conn}(:?-)?\}}", COMMON_ENV[conn]), f"{conn} must be just ${{{conn}}}"
    assert "lsxs_pt_" not in COMPOSE_TEXT and '"password"' not in COMPOSE_TEXT
    for key, value in _strings(COMPOSE):
        if value is None or not isinstance(value, str):
            continue
        if _SECRET_NAME.search(key) and not key.upper().endswith("_FILE"):
            assert _PURE_REF.match(value), f"{key}: {value!r} is a literal, not a ${{VARIABLE}} from .env"
        masked = re.sub(r"\$\{[^}]*\}", "\0", value)
        for m in re.finditer(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:([^@\s/]*)@", masked):
            assert m.group(1) == "\0", f"{key}: a password written in a URI: {value!r}"


def test_every_lightspeed_setting_reaches_airflow() -> None:
    """Every variable the settings module declares is passed to the Airflow services."""
    from lightspeed_pipeline.settings import SETTINGS

    names = {s.env for s in SETTINGS}
    assert {"LIGHTSPEED_SCHEMA", "LIGHTSPEED_SYNC_SCHEDULE", "LIGHTSPEED_RECONCILE_DAYS"} <= names
    _assert_passed(names)


def test_the_code_names_no_lightspeed_variable_the_settings_module_does_not_declare() -> None:
    """A LIGHTSPEED_* name written anywhere in the package or the DAG (a message, a docstring) is a
    declared setting, and no name is built outside the settings module."""
    from lightspeed_pipeline.settings import SETTINGS

    names, dynamic = literal_env_names()
    assert not dynamic, "a LIGHTSPEED_* name is built with an f-string: declare it in settings.py"
    assert names, "the scan works"
    assert names <= {s.env for s in SETTINGS}, names - {s.env for s in SETTINGS}


def _assert_passed(names: set[str]) -> None:
    missing = sorted(names - COMMON_ENV.keys())
    assert not missing, f"not passed to the Airflow services (x-airflow-common environment): {missing}"
    for name in names:
        value = COMMON_ENV[name]
        assert value is None or referenced_variables(value) == {name}, f"{name}: {value!r}"


def test_every_variable_of_the_compose_file_is_documented_in_env_example() -> None:
    used = referenced_variables(COMPOSE_TEXT)
    for svc in [COMMON, *SERVICES.values()]:
        env = svc.get("environment") or {}
        used |= {k for k, v in env.items() if v is None}  # passed through from .env by name
    documented = {name for name, _, _ in env_example()}
    assert not used - documented, f"undocumented in .env.example: {sorted(used - documented)}"
    assert not documented - used, f".env.example documents unused variables: {sorted(documented - used)}"
    required = {m.group(1) for m in _INTERPOLATION.finditer(COMPOSE_TEXT) if m.group(2) in ("?", ":?")}
    active = {name: value for name, value, commented in env_example() if not commented}
    assert all(active.get(name) for name in required), "`cp .env.example .env` must give every required variable"


def test_env_example_connections_are_in_the_recommended_form() -> None:
    libpq = _libpq_keywords()
    seen = {"AIRFLOW_CONN_LIGHTSPEED_API": 0, "AIRFLOW_CONN_LIGHTSPEED_POSTGRES": 0}
    for name, value, _ in env_example():
        if name not in seen:
            continue
        seen[name] += 1
        if value.startswith("{"):
            conn = json.loads(value)
            extra = conn.get("extra") or {}
            extra = json.loads(extra) if isinstance(extra, str) else extra
            host = conn["host"]
        else:
            url = urlsplit(value)
            conn, extra, host = {"conn_type": url.scheme}, dict(parse_qsl(url.query)), value
        if name.endswith("_API"):
            assert conn["conn_type"] == "http" and urlsplit(host).scheme in ("http", "https"), value
            assert not extra, f"lightspeed_api: no extra (HttpHook sends extra keys as headers): {value}"
        else:
            assert conn["conn_type"] in ("postgres", "postgresql"), value
            assert set(extra) <= libpq, f"lightspeed_postgres extra: libpq options only, not {set(extra) - libpq}"
    assert seen == {"AIRFLOW_CONN_LIGHTSPEED_API": 2, "AIRFLOW_CONN_LIGHTSPEED_POSTGRES": 2}  # real + demo


def _libpq_keywords() -> set[str]:
    import psycopg

    return {d.keyword.decode() for d in psycopg.pq.Conninfo.get_defaults()}


def test_demo_block_points_at_the_demo_services() -> None:
    demo = demo_block()
    api = json.loads(demo["AIRFLOW_CONN_LIGHTSPEED_API"])
    pg = json.loads(demo["AIRFLOW_CONN_LIGHTSPEED_POSTGRES"])
    sim = SERVICES["lightspeed-simulator"]
    args = sim["command"]
    assert sim["entrypoint"][-2:] == ["-m", "simulator"] and (ROOT / "simulator" / "__main__.py").is_file()
    assert PurePosixPath(sim["working_dir"]) / "simulator" == mounts(sim)["simulator"]
    assert args[args.index("--host") + 1] == "0.0.0.0"
    url = urlsplit(api["host"])
    assert (url.hostname, url.port) == ("lightspeed-simulator", int(args[args.index("--port") + 1]))
    assert args[args.index("--token") + 1] == "${LIGHTSPEED_DEMO_TOKEN:-}"
    assert api["password"] == demo["LIGHTSPEED_DEMO_TOKEN"]
    target = SERVICES["lightspeed-target"]
    env = target["environment"]
    assert (pg["host"], pg["port"]) == ("lightspeed-target", 5432)
    assert (pg["login"], pg["schema"]) == (env["POSTGRES_USER"], env["POSTGRES_DB"])
    assert env["POSTGRES_PASSWORD"] == "${LIGHTSPEED_DEMO_DB_PASSWORD:-}"
    assert pg["password"] == demo["LIGHTSPEED_DEMO_DB_PASSWORD"]
    assert target["image"].startswith("postgres:") and target["healthcheck"]["test"]
    assert sim["image"] == COMMON["image"] and sim["build"] == COMMON["build"]


# ---- the image -------------------------------------------------------------------------------


def test_dockerfile_matches_the_pins() -> None:
    requirements = (ROOT / "requirements.txt").read_text()
    constraints = (ROOT / "constraints.txt").read_text()
    pin = re.search(r"^apache-airflow==(\S+)\s*$", requirements, re.M)
    assert pin and f"\napache-airflow=={pin.group(1)}\n" in constraints
    base = re.search(r"^FROM\s+apache/airflow:(\S+)", DOCKERFILE, re.M)
    assert base, "the image is built FROM apache/airflow"
    version, _, python = base.group(1).partition("-python")
    assert version == pin.group(1), f"FROM apache/airflow:{base.group(1)} but requirements.txt pins {pin.group(1)}"
    if python and (resolved := re.search(r"Python (\d+\.\d+)", constraints.splitlines()[0])):
        assert python == resolved.group(1), "constraints.txt was resolved on another Python"
    pip = re.search(r"^RUN\s+pip install\b(.*)$", DOCKERFILE, re.M)
    assert pip, "the Dockerfile installs with pip"
    args = pip.group(1)
    assert f'"apache-airflow=={pin.group(1)}"' in args or "apache-airflow==${AIRFLOW_VERSION}" in args
    assert re.search(r"-r\s+\S*requirements\.txt", args) and re.search(r"-c\s+\S*constraints\.txt", args)
    assert DOCKERFILE.index("USER airflow") < pip.start(), "pip runs as the airflow user"
    copied = [src for line in re.findall(r"^COPY\s+(.+)$", DOCKERFILE, re.M) for src in line.split()[:-1]]
    assert {"requirements.txt", "constraints.txt"} <= set(copied)
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    ignore = [line for line in ignore if line and not line.startswith("#")]
    for src in copied:
        if not src.startswith("--"):
            assert "*" not in ignore or f"!{src}" in ignore, f"{src} is COPYed but .dockerignore leaves it out"
    assert ("*" in ignore and "!.env" not in ignore) or ".env" in ignore, ".env must stay out of the image"


def test_local_settings_reach_airflow_home_config_and_preload_the_sync() -> None:
    """Airflow imports $AIRFLOW_HOME/config/airflow_local_settings.py in every process: the
    compose file mounts ./config there, and the file preloads the sync's modules (so tasks the
    LocalExecutor forks from the scheduler skip those imports) without defining any policy."""
    import subprocess
    import sys

    home = AIRFLOW_HOME
    if m := re.search(r"^ENV\s+AIRFLOW_HOME[= ](\S+)", DOCKERFILE, re.M):
        home = PurePosixPath(m.group(1))
    assert mounts(COMMON).get("config") == home / "config"
    local_settings = ROOT / "config" / "airflow_local_settings.py"
    probe = (
        "import sys; import airflow_local_settings as s; "
        "assert s.__all__ == []; "
        "print(sorted(m for m in ('psycopg', 'requests', 'lightspeed_pipeline.sync') if m in sys.modules))"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{local_settings.parent}:{ROOT / 'plugins'}"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['lightspeed_pipeline.sync', 'psycopg', 'requests']"
    # Without the package on the path it still imports (Airflow must start regardless).
    env["PYTHONPATH"] = str(local_settings.parent)
    subprocess.run([sys.executable, "-c", "import airflow_local_settings"], env=env, check=True)
