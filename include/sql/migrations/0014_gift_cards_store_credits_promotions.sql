-- Gift cards and store credit (issue 18; API 2026-07 on) and promotions (2.0 and 2026-07).
-- None has a version or a delete signal, so each is read in full every sync: a row is rewritten
-- only when its record changed (a balance moved, a transaction was added), and one the listing
-- no longer holds gets deleted_at. Their transactions are embedded in the record and kept in
-- their own table keyed by (parent, position), replaced whenever the parent changes.
-- Money in gift cards arrives as decimal strings (`"25.00"`), in store credit as numbers.
CREATE TABLE IF NOT EXISTS lightspeed_gift_cards (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    number TEXT,
    status TEXT,
    balance NUMERIC,
    total_sold NUMERIC,
    total_redeemed NUMERIC,
    expires_at TIMESTAMPTZ,
    sale_id TEXT,
    sale_source TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS lightspeed_gift_card_transactions (
    gift_card_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    id TEXT,
    type TEXT,
    amount NUMERIC,
    source TEXT,
    source_id TEXT,
    client_id TEXT,
    user_id TEXT,
    created_at TIMESTAMPTZ,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (gift_card_id, position)
);

-- One row per customer with store credit: the record's `id` is optional (the vendor's example
-- has none) and `customer_id` is required, so the row's id is the customer's.
CREATE TABLE IF NOT EXISTS lightspeed_store_credits (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    customer_id TEXT,
    store_credit_id TEXT,
    balance NUMERIC,
    total_credit_issued NUMERIC,
    total_credit_redeemed NUMERIC,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS lightspeed_store_credit_transactions (
    customer_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    id TEXT,
    type TEXT,
    amount NUMERIC,
    client_id TEXT,
    sale_id TEXT,
    user_id TEXT,
    created_at TIMESTAMPTZ,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, position)
);

CREATE TABLE IF NOT EXISTS lightspeed_promotions (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    status TEXT,
    start_time TIMESTAMPTZ,
    end_time TIMESTAMPTZ,
    loyalty_multiplier NUMERIC,
    use_promo_code BOOLEAN,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
