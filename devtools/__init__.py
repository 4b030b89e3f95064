"""Development tools: throwaway PostgreSQL and PgBouncer, the simulator process, the demo."""

from __future__ import annotations

import subprocess
from typing import Any


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Terminate a child process, killing it if it does not exit in `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
