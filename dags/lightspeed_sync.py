"""Lightspeed Retail (X-Series) -> PostgreSQL sync. The DAG is built from the entity registry.

The code lives in plugins/lightspeed_pipeline (Airflow puts the plugins folder on sys.path).
"""

from lightspeed_pipeline.factory import build_dag

dag = build_dag()
