-- 0001: the initial schema. Released migrations are never edited; add a new file instead.
-- Applied by the `migrate` task inside one transaction, with search_path set to
-- LIGHTSPEED_SCHEMA, under a PostgreSQL advisory lock.
--
-- Every entity table: the Lightspeed id, its version (the sync cursor; NULL for
-- product categories), the source timestamps, typed columns for what reports,
-- indexes and row-level security use, and the whole record in `data`.

-- Stores (locations).
CREATE TABLE IF NOT EXISTS lightspeed_outlets (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    time_zone TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Tills, each in one outlet.
CREATE TABLE IF NOT EXISTS lightspeed_registers (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    outlet_id TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Staff.
CREATE TABLE IF NOT EXISTS lightspeed_users (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    username TEXT,
    display_name TEXT,
    email TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Sales taxes.
CREATE TABLE IF NOT EXISTS lightspeed_taxes (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    rate NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The store's payment types (what a payment's retailer_payment_type_id points at).
CREATE TABLE IF NOT EXISTS lightspeed_payment_types (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    type_id TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Product brands.
CREATE TABLE IF NOT EXISTS lightspeed_brands (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Product suppliers.
CREATE TABLE IF NOT EXISTS lightspeed_suppliers (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Deprecated in 2.0 (same tree and ids as product_categories); kept for completeness.
CREATE TABLE IF NOT EXISTS lightspeed_product_types (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Category tree; no version: read in full every run, missing ones marked deleted.
CREATE TABLE IF NOT EXISTS lightspeed_product_categories (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    parent_category_id TEXT,
    root_category_id TEXT,
    leaf_category BOOLEAN,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Customer groups.
CREATE TABLE IF NOT EXISTS lightspeed_customer_groups (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    group_id TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Products (variants are products with variant_parent_id).
CREATE TABLE IF NOT EXISTS lightspeed_products (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    sku TEXT,
    name TEXT,
    handle TEXT,
    brand_id TEXT,
    supplier_id TEXT,
    product_type_id TEXT,
    active BOOLEAN,
    has_inventory BOOLEAN,
    price_including_tax NUMERIC,
    price_excluding_tax NUMERIC,
    supply_price NUMERIC,
    variant_parent_id TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Customers.
CREATE TABLE IF NOT EXISTS lightspeed_customers (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    customer_code TEXT,
    first_name TEXT,
    last_name TEXT,
    email TEXT,
    phone TEXT,
    customer_group_id TEXT,
    loyalty_balance NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Stock per product and outlet.
CREATE TABLE IF NOT EXISTS lightspeed_inventory (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    product_id TEXT,
    outlet_id TEXT,
    inventory_level NUMERIC,
    current_amount NUMERIC,
    reorder_point NUMERIC,
    reorder_amount NUMERIC,
    average_cost NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Sales with their line items and payments (embedded; replaced with the sale).
CREATE TABLE IF NOT EXISTS lightspeed_sales (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    invoice_number TEXT,
    receipt_number TEXT,
    status TEXT,
    sale_date TIMESTAMPTZ,
    total_price NUMERIC,
    total_tax NUMERIC,
    total_loyalty NUMERIC,
    outlet_id TEXT,
    register_id TEXT,
    customer_id TEXT,
    user_id TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS lightspeed_sale_line_items (
    sale_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    id TEXT,
    product_id TEXT,
    quantity NUMERIC,
    price NUMERIC,
    price_total NUMERIC,
    tax NUMERIC,
    tax_total NUMERIC,
    tax_id TEXT,
    discount NUMERIC,
    discount_total NUMERIC,
    status TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (sale_id, position)
);

CREATE TABLE IF NOT EXISTS lightspeed_sale_payments (
    sale_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    id TEXT,
    retailer_payment_type_id TEXT,
    payment_type_id TEXT,
    name TEXT,
    amount NUMERIC,
    payment_date TIMESTAMPTZ,
    register_id TEXT,
    outlet_id TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (sale_id, position)
);

-- Sync bookkeeping --------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS sync_state (
    entity_type TEXT PRIMARY KEY,
    last_sync_time TIMESTAMPTZ,            -- end of the last successful sync
    last_version BIGINT,                   -- highest version committed; only moves forward
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('success', 'failed', 'pending', 'running', 'never_synced')),
    error_message TEXT,
    last_attempt_at TIMESTAMPTZ,           -- start of the last sync attempt
    last_run_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS sync_log (
    id BIGSERIAL PRIMARY KEY,
    timestamp TIMESTAMPTZ NOT NULL DEFAULT now(),
    entity_type TEXT NOT NULL,
    action TEXT NOT NULL,                  -- historical_import | incremental_sync | run_summary
    status TEXT NOT NULL,                  -- started | completed | failed
    duration_seconds NUMERIC,
    records_processed INTEGER NOT NULL DEFAULT 0,
    error_details TEXT,
    metadata JSONB
);

-- Records that could not be stored as rows at all (not an object, no id).
CREATE TABLE IF NOT EXISTS sync_rejects (
    id BIGSERIAL PRIMARY KEY,
    rejected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    entity_type TEXT NOT NULL,
    after_version TEXT,                    -- the cursor of the page it came in
    reason TEXT NOT NULL,
    payload JSONB,
    run_id TEXT
);

-- What each `validate` task found: row counts, orphans, duplicates.
CREATE TABLE IF NOT EXISTS sync_validation (
    id BIGSERIAL PRIMARY KEY,
    checked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    entity_type TEXT NOT NULL,
    run_id TEXT,
    row_count BIGINT NOT NULL,
    deleted_count BIGINT NOT NULL,
    orphan_count BIGINT NOT NULL,
    duplicate_count BIGINT NOT NULL,
    details JSONB NOT NULL
);

-- Indexes ---------------------------------------------------------------------------
-- Lookups the seed asks for (SKU, email, invoice number), time columns of the large
-- tables, the foreign keys reports join on, and the sync tables' time columns.

CREATE INDEX IF NOT EXISTS idx_products_sku ON lightspeed_products (sku);
CREATE INDEX IF NOT EXISTS idx_products_product_type_id ON lightspeed_products (product_type_id);
CREATE INDEX IF NOT EXISTS idx_products_brand_id ON lightspeed_products (brand_id);
CREATE INDEX IF NOT EXISTS idx_products_supplier_id ON lightspeed_products (supplier_id);
CREATE INDEX IF NOT EXISTS idx_products_updated_at ON lightspeed_products (updated_at);
CREATE INDEX IF NOT EXISTS idx_customers_email ON lightspeed_customers (email);
CREATE INDEX IF NOT EXISTS idx_customers_customer_group_id ON lightspeed_customers (customer_group_id);
CREATE INDEX IF NOT EXISTS idx_customers_created_at ON lightspeed_customers (created_at);
CREATE INDEX IF NOT EXISTS idx_customers_updated_at ON lightspeed_customers (updated_at);
CREATE INDEX IF NOT EXISTS idx_registers_outlet_id ON lightspeed_registers (outlet_id);
CREATE INDEX IF NOT EXISTS idx_inventory_product_id ON lightspeed_inventory (product_id);
CREATE INDEX IF NOT EXISTS idx_inventory_outlet_id ON lightspeed_inventory (outlet_id, product_id);
CREATE INDEX IF NOT EXISTS idx_sales_invoice_number ON lightspeed_sales (invoice_number);
CREATE INDEX IF NOT EXISTS idx_sales_sale_date ON lightspeed_sales (sale_date);
CREATE INDEX IF NOT EXISTS idx_sales_outlet_id_sale_date ON lightspeed_sales (outlet_id, sale_date);
CREATE INDEX IF NOT EXISTS idx_sales_customer_id ON lightspeed_sales (customer_id);
CREATE INDEX IF NOT EXISTS idx_sales_created_at ON lightspeed_sales (created_at);
CREATE INDEX IF NOT EXISTS idx_sales_updated_at ON lightspeed_sales (updated_at);
CREATE INDEX IF NOT EXISTS idx_sale_line_items_product_id ON lightspeed_sale_line_items (product_id);
CREATE INDEX IF NOT EXISTS idx_sale_payments_payment_type ON lightspeed_sale_payments (retailer_payment_type_id);
-- (sale_id leads the primary keys of lightspeed_sale_line_items and lightspeed_sale_payments.)

CREATE INDEX IF NOT EXISTS idx_sync_log_timestamp ON sync_log (timestamp);
CREATE INDEX IF NOT EXISTS idx_sync_log_entity_type ON sync_log (entity_type, timestamp);
CREATE INDEX IF NOT EXISTS idx_sync_log_status ON sync_log (status);
CREATE INDEX IF NOT EXISTS idx_sync_rejects_entity ON sync_rejects (entity_type, rejected_at);
CREATE INDEX IF NOT EXISTS idx_sync_validation_entity ON sync_validation (entity_type, checked_at);
