"""The database side: the only code that holds a connection to the target PostgreSQL.

`Warehouse.transaction()` is the one way in; every table name is qualified by
`Warehouse.table()`. Nothing here imports the API side's transport or Airflow.
"""

from lightspeed_pipeline.warehouse.connection import DbSettings, Warehouse, connect

__all__ = ["DbSettings", "Warehouse", "connect"]
