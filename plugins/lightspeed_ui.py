"""Airflow plugin: the Lightspeed sync-health page, linked from the Airflow UI's navigation.

The page is served by the Airflow API server under /lightspeed/health and needs a
logged-in user with read access to the `lightspeed_sync` DAG. Every Airflow process
(each task, too) loads plugins, so the FastAPI app is only built on its first request.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin


class LazyASGIApp:
    """An ASGI app that builds the real one on first use (keeps plugin loading cheap)."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from lightspeed_pipeline.ui import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class LightspeedSyncPlugin(AirflowPlugin):
    name = "lightspeed_sync"
    fastapi_apps = [{"app": LazyASGIApp(), "url_prefix": "/lightspeed", "name": "Lightspeed sync health"}]
    external_views = [
        {
            "name": "Lightspeed sync health",
            "href": "/lightspeed/health",
            "url_route": "lightspeed-sync-health",
            "destination": "nav",
            "category": "browse",
        }
    ]
