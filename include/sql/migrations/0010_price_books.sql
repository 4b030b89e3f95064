-- Price books (issue 18): version-paged; 2.0 has no delete feed (listed in full every run),
-- 2026-07 honours `deleted`. Whom a book applies to is kept in `data` as sent: 2.0 names one
-- customer group and outlet (`customer_group_id`, `outlet_id`), 2026-07 lists them
-- (`customer_group_ids`, `outlets`), so no typed column would mean the same in both;
-- `data_shape` says which a row holds, and a switch of API version restates the rows.
CREATE TABLE IF NOT EXISTS lightspeed_price_books (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    type TEXT,
    valid_from TIMESTAMPTZ,
    valid_to TIMESTAMPTZ,
    data_shape TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_price_books_version ON lightspeed_price_books (version);
