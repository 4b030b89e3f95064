-- 0002: durable OAuth tokens and the audit trail of sensitive tables.
-- Row-level security, policies and the audit triggers themselves are (re)applied by
-- the `migrate` task from the entity registry after the migrations (see db.py).

-- The rotating OAuth token pair (encrypted with a key derived from the client secret).
CREATE TABLE IF NOT EXISTS lightspeed_oauth_tokens (
    token_key TEXT PRIMARY KEY,            -- sha256(store URL | client id)
    access_token TEXT,                     -- Fernet ciphertext
    refresh_token TEXT NOT NULL,           -- Fernet ciphertext
    seed_fingerprint TEXT NOT NULL,        -- HMAC of the connection's refresh token the chain started from
    expires_at TIMESTAMPTZ,
    refreshed_at TIMESTAMPTZ,
    refresh_count INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Who changed what and when, for audited tables: one row per inserted or changed row,
-- written by the same transaction (statement-level triggers with transition tables:
-- one INSERT ... SELECT per statement, not one per row). The trigger functions are
-- generated per audited table from the entity registry by `migrate` (db.py).
CREATE TABLE IF NOT EXISTS lightspeed_audit_log (
    id BIGSERIAL PRIMARY KEY,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_by TEXT NOT NULL DEFAULT current_user,
    txid BIGINT NOT NULL DEFAULT txid_current(),
    table_name TEXT NOT NULL,
    row_id TEXT NOT NULL,
    operation TEXT NOT NULL,               -- INSERT | UPDATE
    old_values JSONB,                      -- changed columns before (data.<key> for members of data)
    new_values JSONB                       -- changed columns after
);
CREATE INDEX IF NOT EXISTS idx_audit_log_row ON lightspeed_audit_log (table_name, row_id, changed_at);
