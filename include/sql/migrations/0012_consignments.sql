-- Consignments (issue 18): stock orders from suppliers, transfers between outlets, returns and
-- stocktakes. Version-paged in 2.0 (a bare array) and 2026-07 (`{data, version}`); `deleted_at`
-- but no `deleted` parameter, so removals are found by the periodic complete listing.
CREATE TABLE IF NOT EXISTS lightspeed_consignments (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    type TEXT,
    status TEXT,
    name TEXT,
    reference TEXT,
    outlet_id TEXT,
    source_outlet_id TEXT,
    supplier_id TEXT,
    supplier_invoice TEXT,
    consignment_date TIMESTAMPTZ,
    due_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ,
    total_count_gain NUMERIC,
    total_count_loss NUMERIC,
    total_cost_gain NUMERIC,
    total_cost_loss NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_consignments_version ON lightspeed_consignments (version);
CREATE INDEX IF NOT EXISTS idx_consignments_outlet ON lightspeed_consignments (outlet_id);

-- A consignment's products, read per consignment whose version moved (`GET
-- /consignments/{id}/products`). The records carry no id: a row's id is
-- `<consignment id>/<product id>` (`/2`, `/3`... for a product listed again in one consignment,
-- in version order). `count`, `received` and `cost` arrive as decimal strings.
CREATE TABLE IF NOT EXISTS lightspeed_consignment_products (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    consignment_id TEXT NOT NULL,
    product_id TEXT,
    product_sku TEXT,
    count NUMERIC,
    received NUMERIC,
    cost NUMERIC,
    is_included BOOLEAN,
    status TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_consignment_products_consignment ON lightspeed_consignment_products (consignment_id);
CREATE INDEX IF NOT EXISTS idx_consignment_products_product ON lightspeed_consignment_products (product_id);
