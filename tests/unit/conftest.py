"""Shared by the unit tests: a client on a scripted HTTP server (real HTTP, scripted answers)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient

from tests.unit.scripted_http import Response, ScriptedServer, ok

Handler = Callable[[str, dict[str, str]], Response]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def make_client() -> Iterator[Callable[..., Any]]:
    servers: list[ScriptedServer] = []

    def make(handler: Handler, **config: Any) -> tuple[LightspeedClient, ScriptedServer, Sleeps]:
        server = ScriptedServer(handler)
        servers.append(server)
        sleeps = Sleeps()
        options = {"page_size": 2, "backoff_initial": 1, **config}
        cfg = ClientConfig(base_url=server.url, token="secret-token", **options)
        return LightspeedClient(cfg, sleep=sleeps, rng=random.Random(0)), server, sleeps

    yield make
    for s in servers:
        s.close()


def versioned_api(records: list[dict[str, Any]], cap: int = 2) -> Handler:
    """Serves `records` like the real API: after is exclusive, page_size silently capped."""

    def handler(path: str, q: dict[str, str]) -> Response:
        after = int(q.get("after", 0))
        size = min(int(q.get("page_size", 100)), cap)
        page = [r for r in records if r["version"] > after][:size]
        if not page:
            return ok({"data": [], "version": None})
        return ok({"data": page, "version": {"min": page[0]["version"], "max": page[-1]["version"]}})

    return handler
