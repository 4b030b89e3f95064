-- The prices of the price books (issue 18): version-paged in 2.0 and 2026-07 (2026-07 answers
-- `{data}` alone: the cursor is the records' own version). No `deleted` parameter in either: a
-- removed price is found by the periodic complete listing, as 2.0's inventory is.
CREATE TABLE IF NOT EXISTS lightspeed_price_book_products (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    price_book_id TEXT,
    product_id TEXT,
    tax_id TEXT,
    price NUMERIC,
    loyalty_value NUMERIC,
    min_units NUMERIC,
    max_units NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_price_book_products_version ON lightspeed_price_book_products (version);
CREATE INDEX IF NOT EXISTS idx_price_book_products_book ON lightspeed_price_book_products (price_book_id);
CREATE INDEX IF NOT EXISTS idx_price_book_products_product ON lightspeed_price_book_products (product_id);
