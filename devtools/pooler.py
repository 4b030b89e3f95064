"""A throwaway PgBouncer in transaction mode (what Supabase's port 6543 does), for the tests.

PgBouncer comes from the system (Debian package `pgbouncer`); `make test` installs it
when it can. Like PostgreSQL it refuses to run as root, so as root it runs as `nobody`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devtools import stop_process


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
    )


class TransactionPooler:
    """PgBouncer with pool_mode=transaction in front of `upstream_dsn`; `dsn` points at it."""

    def __init__(self, upstream_dsn: str, *, pool_size: int = 4) -> None:
        self.upstream = urlsplit(upstream_dsn)
        self.pool_size = pool_size
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.dsn: str | None = None

    def __enter__(self) -> TransactionPooler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> str:
        binary = pgbouncer_binary()
        if binary is None:
            raise FileNotFoundError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        self.root = Path(tempfile.mkdtemp(prefix="lightspeed-pgbouncer-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        user = self.upstream.username or "postgres"
        dbname = (self.upstream.path or "/postgres").lstrip("/") or "postgres"
        (self.root / "userlist.txt").write_text(f'"{user}" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{dbname} = host={self.upstream.hostname} port={self.upstream.port or 5432} dbname={dbname}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\nmax_client_conn = 200\n"
            f"admin_users = {user}\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.root / 'pgbouncer.log'}\n"
        )
        run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            import pwd

            nobody = pwd.getpwnam("nobody")
            for path in (self.root, *self.root.iterdir()):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        self.proc = subprocess.Popen(
            [binary, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **run_as,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"pgbouncer exited: {err.strip()[:500]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        self.dsn = f"postgresql://{user}@127.0.0.1:{port}/{dbname}"
        return self.dsn

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def admin(self, command: str) -> list[dict[str, Any]]:
        """Run an admin-console command (SHOW STATS, SHOW CONFIG, ...) and return its rows."""
        import psycopg

        assert self.dsn is not None
        with psycopg.connect(self.dsn.rsplit("/", 1)[0] + "/pgbouncer", autocommit=True,
                             cursor_factory=psycopg.ClientCursor) as conn:  # fmt: skip
            cur = conn.execute(command)
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
