-- API versions (issue 17): the version a database is filled with is recorded with its store, and
-- kept until the operator sets LIGHTSPEED_API_VERSION to another one; each entity's last sync says
-- which version it read with.
ALTER TABLE sync_store ADD COLUMN IF NOT EXISTS api_version TEXT;
-- Every database filled before this migration was filled through API 2.0.
UPDATE sync_store SET api_version = '2.0' WHERE api_version IS NULL;
ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS api_version TEXT;
UPDATE sync_state SET api_version = '2.0' WHERE api_version IS NULL AND last_sync_time IS NOT NULL;
