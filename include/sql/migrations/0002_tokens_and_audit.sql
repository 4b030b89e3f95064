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
-- one INSERT ... SELECT per statement, not one per row).
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
CREATE INDEX IF NOT EXISTS idx_audit_log_changed_at ON lightspeed_audit_log (changed_at);

-- SET search_path FROM CURRENT pins the functions to this schema, whatever the caller's search_path.
CREATE OR REPLACE FUNCTION lightspeed_audit_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO lightspeed_audit_log (table_name, row_id, operation, new_values)
    SELECT TG_TABLE_NAME, n.id, 'INSERT', to_jsonb(n) - 'data' - 'synced_at'
    FROM new_rows n;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION lightspeed_audit_update() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO lightspeed_audit_log (table_name, row_id, operation, old_values, new_values)
    SELECT TG_TABLE_NAME, n.id, 'UPDATE', d.old_values, d.new_values
    FROM new_rows n
    JOIN old_rows o ON o.id = n.id
    CROSS JOIN LATERAL (
        SELECT jsonb_object_agg(c.key, c.old_value) AS old_values,
               jsonb_object_agg(c.key, c.new_value) AS new_values
        FROM (
            -- typed columns that changed
            SELECT e.key, (to_jsonb(o) - 'data' - 'synced_at') -> e.key AS old_value, e.value AS new_value
            FROM jsonb_each(to_jsonb(n) - 'data' - 'synced_at') e
            WHERE ((to_jsonb(o) - 'data' - 'synced_at') -> e.key) IS DISTINCT FROM e.value
            UNION ALL
            -- members of the record that changed or appeared
            SELECT 'data.' || e.key, o.data -> e.key, e.value
            FROM jsonb_each(n.data) e
            WHERE (o.data -> e.key) IS DISTINCT FROM e.value
            UNION ALL
            -- members that disappeared
            SELECT 'data.' || e.key, e.value, NULL
            FROM jsonb_each(o.data) e
            WHERE NOT (n.data ? e.key)
        ) c
    ) d
    WHERE d.old_values IS NOT NULL;
    RETURN NULL;
END
$$;
