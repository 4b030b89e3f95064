"""Airflow local settings for the Lightspeed sync: preload the sync's modules.

Airflow imports this file (from `$AIRFLOW_HOME/config`, which docker-compose.yaml mounts from
./config) in every process at startup. With the LocalExecutor each task runs in a process
forked from the scheduler, so modules the scheduler has already imported cost a task nothing;
without this file, every sync task imports psycopg, requests and the sync package itself
(about 0.2 CPU-seconds each, a third of a no-op task: bench/scheduler.json). It defines no
policy, changes no setting, and never stops Airflow from starting: when the package cannot be
imported (plugins folder elsewhere), tasks import it themselves, as they would without it.
"""

from __future__ import annotations

import importlib
import logging

__all__: list[str] = []  # nothing here is a cluster policy or a setting

_PRELOAD = (
    "psycopg",
    "requests",
    "lightspeed_pipeline.factory",
    "lightspeed_pipeline.hooks",
    "lightspeed_pipeline.identity",
    "lightspeed_pipeline.report",
    "lightspeed_pipeline.sync",
    "lightspeed_pipeline.validate",
    "lightspeed_pipeline.warehouse.migrations",
    "lightspeed_pipeline.warehouse.tokens",
)

for _name in _PRELOAD:
    try:
        importlib.import_module(_name)
    except Exception as _exc:  # never break Airflow's startup for an optimisation
        logging.getLogger(__name__).debug("not preloaded: %s (%s)", _name, _exc)
