-- Record shapes (issue 17): the API's dated versions (2026-07) reshape sales and inventory.
-- The reader fills the typed columns from either shape; `data_shape` says which one a row's
-- `data` has ('2.0', '2026-07', or 'unknown' when it holds neither's members: stored all the
-- same, and counted by validation). New columns for fields analysts use.

ALTER TABLE lightspeed_sales
    ADD COLUMN IF NOT EXISTS total_price_incl_tax NUMERIC,   -- 2026-07 totals.price_incl_tax
    ADD COLUMN IF NOT EXISTS return_for TEXT,                -- the sale this one returns
    ADD COLUMN IF NOT EXISTS data_shape TEXT;
COMMENT ON COLUMN lightspeed_sales.data_shape IS
    'which published record shape data has: 2.0 (flat), 2026-07 (source, totals, _metadata), unknown';

ALTER TABLE lightspeed_inventory
    ADD COLUMN IF NOT EXISTS reorder_target NUMERIC,         -- 2026-07
    ADD COLUMN IF NOT EXISTS data_shape TEXT;
COMMENT ON COLUMN lightspeed_inventory.data_shape IS
    'which published record shape data has: 2.0 (inventory_level), 2026-07 (current_inventory_level), unknown';

ALTER TABLE sync_validation
    ADD COLUMN IF NOT EXISTS unknown_shape_count INTEGER NOT NULL DEFAULT 0;

-- The rows already stored: their shape, and the new columns their data can fill (the same
-- markers and members as the registry, entities.py, at the time of this migration).
UPDATE lightspeed_sales SET
    data_shape = CASE
        WHEN (jsonb_typeof(data -> '_metadata') = 'object' AND data -> '_metadata' ? 'version')
             OR data ? 'totals'
             OR (jsonb_typeof(data -> 'source') = 'object' AND data -> 'source' ? 'outlet_id') THEN '2026-07'
        WHEN data ?| ARRAY['total_price', 'outlet_id', 'sale_date', 'status', 'version'] THEN '2.0'
        ELSE 'unknown'
    END,
    return_for = CASE
        WHEN data ? 'return_for' THEN
            CASE WHEN jsonb_typeof(data -> 'return_for') IN ('string', 'number', 'boolean')
                 THEN data ->> 'return_for' END
        WHEN jsonb_typeof(data #> '{return,original_sale_id}') IN ('string', 'number', 'boolean')
            THEN data #>> '{return,original_sale_id}'
    END,
    total_price_incl_tax = CASE
        WHEN jsonb_typeof(data #> '{totals,price_incl_tax}') = 'number'
            THEN (data #>> '{totals,price_incl_tax}')::numeric
    END
WHERE data_shape IS NULL;

UPDATE lightspeed_inventory SET
    data_shape = CASE
        WHEN data ? 'current_inventory_level' THEN '2026-07'
        WHEN data ?| ARRAY['inventory_level', 'current_amount'] THEN '2.0'
        ELSE 'unknown'
    END,
    reorder_target = CASE
        WHEN jsonb_typeof(data -> 'reorder_target') = 'number' THEN (data ->> 'reorder_target')::numeric
    END
WHERE data_shape IS NULL;
