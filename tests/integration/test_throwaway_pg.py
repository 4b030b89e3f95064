"""The throwaway PostgreSQL launcher: the pip-wheel fallback works as root and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from devtools.pg import ThrowawayPostgres, reap_leftovers


def _server_pid(root: Path) -> int:
    return int((root / "data" / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_wheel_server_starts_serves_and_is_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTSPEED_PG_SOURCE", "wheel")
    pg = ThrowawayPostgres()
    dsn = pg.start()
    root = pg.root
    assert root is not None
    try:
        with psycopg.connect(dsn) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            data_dir = Path(conn.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
        assert version.startswith("18.")  # the wheel's server, not the system's
        assert data_dir.is_relative_to(root)
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    finally:
        pg.stop()
    assert not root.exists()
    for _ in range(50):
        if not _alive(pid):
            break
        time.sleep(0.1)
    assert not _alive(pid)


def test_a_server_whose_owner_died_is_reaped() -> None:
    # Start a server from a child process that is then SIGKILLed: its server outlives it.
    code = (
        "from devtools.pg import ThrowawayPostgres; import os, signal; p = ThrowawayPostgres(); p.start();"
        " print(p.root, flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    root = Path(out.stdout.strip())
    pid = _server_pid(root)
    assert _alive(pid)
    assert reap_leftovers() >= 1
    assert not root.exists() and not _alive(pid)
