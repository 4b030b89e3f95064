-- 0004: what makes the copy trustworthy without checking it by hand.
-- Released migrations are never edited; add a new file instead.

-- The store this database mirrors (one row). A run whose connection reaches another
-- store (GET /api/2.0/retailer answers another id) writes nothing and fails.
CREATE TABLE IF NOT EXISTS sync_store (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    retailer_id TEXT NOT NULL,
    domain_prefix TEXT,
    name TEXT,
    api_url TEXT NOT NULL,                 -- the API root last verified to answer as this store
    adopted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    verified_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    details JSONB NOT NULL DEFAULT '{}'::jsonb
);

-- A finding of the last successful sync that the data team should see (sync_health says
-- WARNING while it stands), such as an empty listing that was not taken as deletions.
ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS warning_message TEXT;
-- When a complete listing of the entity was last compared with the table (deletions of
-- entities without a delete feed).
ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS last_reconciled_at TIMESTAMPTZ;

-- Settings the views need that only the DAG knows (the schedule's interval).
CREATE TABLE IF NOT EXISTS sync_settings (
    key TEXT PRIMARY KEY,
    value JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Which definition of each reporting view is in place: a view is replaced only when its
-- file changed (CREATE OR REPLACE VIEW takes an ACCESS EXCLUSIVE lock, which would queue
-- behind, and then block, every report query).
CREATE TABLE IF NOT EXISTS schema_views (
    name TEXT PRIMARY KEY,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A page of a complete listing marks deleted the rows of its version range it does not
-- hold: that lookup needs the version.
CREATE INDEX IF NOT EXISTS idx_users_version ON lightspeed_users (version);
CREATE INDEX IF NOT EXISTS idx_taxes_version ON lightspeed_taxes (version);
CREATE INDEX IF NOT EXISTS idx_payment_types_version ON lightspeed_payment_types (version);
CREATE INDEX IF NOT EXISTS idx_brands_version ON lightspeed_brands (version);
CREATE INDEX IF NOT EXISTS idx_suppliers_version ON lightspeed_suppliers (version);
CREATE INDEX IF NOT EXISTS idx_product_types_version ON lightspeed_product_types (version);
CREATE INDEX IF NOT EXISTS idx_inventory_version ON lightspeed_inventory (version);

-- The latest validation of an entity is read by sync_health.
CREATE INDEX IF NOT EXISTS idx_sync_validation_entity_id ON sync_validation (entity_type, id);
