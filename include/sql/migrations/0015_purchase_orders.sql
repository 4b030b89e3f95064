-- Purchase orders (issue 18; API 2026-04 on): orders, their line items (with allocations per
-- outlet in data), their deliveries and the deliveries' line items. The orders are
-- version-paged with no delete signal (reconciled on the cadence); the rest is read per parent
-- whose version moved (`/purchase_orders/{id}/line_items`, `/purchase_orders/{id}/deliveries`,
-- `/purchase_orders/{purchase_order_id}/deliveries/{id}/line_items`), each listing complete.
-- Quantities and money arrive as decimal strings; the cost fields need `products:read:costs`
-- (without it they come empty: the rows land, the cost columns stay NULL, and sync_health says why).
CREATE TABLE IF NOT EXISTS lightspeed_purchase_orders (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    order_number TEXT,
    status TEXT,
    supplier_id TEXT,
    supplier_invoice TEXT,
    delivery_outlet_id TEXT,
    user_id TEXT,
    due_at TIMESTAMPTZ,
    cost_price_total NUMERIC,
    quantity_total NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_purchase_orders_version ON lightspeed_purchase_orders (version);

CREATE TABLE IF NOT EXISTS lightspeed_purchase_order_line_items (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    purchase_order_id TEXT NOT NULL,
    product_id TEXT,
    quantity NUMERIC,
    cost_price NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_po_line_items_order ON lightspeed_purchase_order_line_items (purchase_order_id);

CREATE TABLE IF NOT EXISTS lightspeed_purchase_order_deliveries (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    purchase_order_id TEXT NOT NULL,
    outlet_id TEXT,
    status TEXT,
    supplier_invoice TEXT,
    user_id TEXT,
    due_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ,
    invoice_date TIMESTAMPTZ,
    cost_price_total NUMERIC,
    received_quantity_total NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_po_deliveries_order ON lightspeed_purchase_order_deliveries (purchase_order_id);

CREATE TABLE IF NOT EXISTS lightspeed_purchase_order_delivery_line_items (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    purchase_order_delivery_id TEXT NOT NULL,
    purchase_order_line_item_id TEXT,
    product_id TEXT,
    expected_quantity NUMERIC,
    received_quantity NUMERIC,
    cost_price NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_po_delivery_line_items_delivery
    ON lightspeed_purchase_order_delivery_line_items (purchase_order_delivery_id);
