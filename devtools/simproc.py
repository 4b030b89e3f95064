"""Run the Lightspeed simulator in a subprocess and drive its control endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from devtools import stop_process

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TOKEN = "lsxs_pt_demo-token-0123456789"


class SimulatorProcess:
    """`python -m simulator` on a free port; `url` is its base URL."""

    def __init__(
        self,
        *,
        scale: str = "test",
        seed: int = 42,
        token: str = DEFAULT_TOKEN,
        max_page_size: int = 200,
        store: str = "simulator",
        extra_args: list[str] | None = None,
    ) -> None:
        self.token = token
        cmd = [
            sys.executable, "-m", "simulator", "--port", "0", "--seed", str(seed), "--scale", scale,
            "--token", token, "--max-page-size", str(max_page_size), "--store", store, *(extra_args or []),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator did not start (exit code {self.proc.poll()})")
        started = json.loads(line)
        self.url: str = started["url"]
        self.store: str = started["store"]
        self.base_path: str = started["base_path"]  # --base-path in extra_args may have moved the API
        self.http = requests.Session()

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.http.post(f"{self.url}/__sim/{path}", json=body or {}, timeout=120)
        resp.raise_for_status()
        return resp.json() if resp.content else {}

    def state(self, api_version: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Every record, as a client of `api_version` reads it (default: the stored 2.0 shapes)."""
        path = f"state/{api_version}" if api_version else "state"
        return self.http.get(f"{self.url}/__sim/{path}", timeout=120).json()["resources"]

    def stats(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/__sim/stats", timeout=60).json()

    def reset_stats(self) -> None:
        self._post("stats/reset")

    def faults(self, **config: Any) -> None:
        self._post("faults", config)

    def mutate(self, **spec: Any) -> dict[str, Any]:
        return self._post("mutate", spec)

    def count(self, spec: dict[str, dict[str, Any]]) -> dict[str, int]:
        """Records a read of each resource from {"after": V, "deleted": bool} would return."""
        return self._post("count", spec)

    def grants(self, *, costs: bool = True) -> None:
        """Answer as to a token with (or without) `products:read:costs`."""
        self._post("grants", {"costs": costs})

    def parents(self, resource: str, after: int = 0) -> dict[str, int]:
        """The parents a per-parent resource lists under with a version above `after`: id -> records."""
        return self._post("parents", {"resource": resource, "after": after})

    def inject(self, resource: str, records: list[Any]) -> dict[str, Any]:
        """Serve `records` as sent, however odd (see SimData.inject)."""
        return self._post("inject", {"resource": resource, "records": records})

    def publish(self, resource: str, body: Any) -> dict[str, Any]:
        """Serve `body` exactly (a vendor's example, say) as `resource`'s listing; None goes back to the data."""
        return self._post("publish", {"resource": resource, "body": body})

    def retailer(self) -> dict[str, Any]:
        """The store's identity: GET /retailer with `token`, the `data` object of the answer."""
        resp = self.http.get(
            f"{self.url}{self.base_path}/retailer", headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )
        resp.raise_for_status()
        return resp.json()["data"]

    def setup_oauth(self, **config: Any) -> None:
        """Switch the simulator to OAuth (client_id, client_secret, refresh_token, access_token)."""
        self._post("oauth", config)

    def expire_access_token(self) -> None:
        self._post("oauth/expire")

    def oauth_state(self) -> dict[str, Any]:
        """Current tokens and the counts of accepted and rejected refreshes."""
        return self.http.get(f"{self.url}/__sim/oauth", timeout=60).json()

    def stop(self) -> None:
        self.http.close()
        stop_process(self.proc)

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def airflow_connection(self, **extra: Any) -> str:
        """AIRFLOW_CONN_LIGHTSPEED_API value (JSON form) pointing at this simulator."""
        return json.dumps({"conn_type": "http", "host": self.url, "password": self.token, "extra": extra})
