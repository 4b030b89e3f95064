"""Lightspeed Retail (X-Series) to PostgreSQL sync: the package behind the `lightspeed_sync` DAG.

Modules are kept import-light on purpose: the DAG file imports only `entities` and
`factory`; HTTP and database libraries are imported inside task code.
"""
