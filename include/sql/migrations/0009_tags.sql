-- Product tags (issue 18): version-paged with a delete feed in 2.0 and 2026-07. 2.0's records
-- carry no `version` of their own (the page's envelope does: the cursor), so `version` is NULL
-- for rows read through 2.0 and such a row is rewritten only when its data changed; 2026-07's
-- records carry it (`data_shape` says which a row holds; a switch restates the rows).
CREATE TABLE IF NOT EXISTS lightspeed_tags (
    id TEXT PRIMARY KEY,
    version BIGINT,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    name TEXT,
    data_shape TEXT,
    data JSONB NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_tags_version ON lightspeed_tags (version);
