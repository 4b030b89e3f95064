"""The API side: HTTP transport, OAuth, rate pacing and paginators.

Nothing here imports the database side (`lightspeed_pipeline.warehouse`) or Airflow; the
OAuth token vault is injected (tests/dags/test_layering.py holds this).
"""
