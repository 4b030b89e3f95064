-- product_price_history: every change of a product's price, from history mode
-- (lightspeed_products_history: LIGHTSPEED_HISTORY keeps products' past versions by default).
-- One row per product version whose price_excluding_tax or price_including_tax differs from the
-- product's previous version that was not a deletion (a deleted and revived product compares with
-- its version before the deletion). The first version history knows of a product is not a change.
-- Only typed columns are read; a price that could not be typed is NULL (NULL to a value is a change).
-- Several changes between two syncs are one change here: history holds what each sync saw.
--   product_id                the product
--   sku, name                 as of the new version
--   changed_at                when the new price became valid (the version's valid_from)
--   version                   the product version that brought it
--   previous_version          the version it replaced
--   old_price, new_price      price_excluding_tax before and after
--   change_percent            (new - old) / old x 100, rounded to 2 places (NULL when old is 0 or NULL)
--   old_price_including_tax, new_price_including_tax
--   is_current                the new price is the product's price now
CREATE OR REPLACE VIEW product_price_history WITH (security_invoker = true) AS
WITH versions AS (
    SELECT
        h.id AS product_id, h.sku, h.name, h.valid_from, h.version, h.is_current,
        h.price_excluding_tax, h.price_including_tax,
        lag(h.version) OVER w AS previous_version,
        lag(h.price_excluding_tax) OVER w AS old_price,
        lag(h.price_including_tax) OVER w AS old_price_including_tax
    FROM lightspeed_products_history h
    WHERE NOT h.deleted
    WINDOW w AS (PARTITION BY h.id ORDER BY h.valid_from, h.version)
)
SELECT
    product_id,
    sku,
    name,
    valid_from AS changed_at,
    version,
    previous_version,
    old_price,
    price_excluding_tax AS new_price,
    CASE WHEN old_price <> 0 THEN round((price_excluding_tax - old_price) / old_price * 100, 2) END
        AS change_percent,
    old_price_including_tax,
    price_including_tax AS new_price_including_tax,
    is_current
FROM versions
WHERE previous_version IS NOT NULL
    AND (old_price IS DISTINCT FROM price_excluding_tax
         OR old_price_including_tax IS DISTINCT FROM price_including_tax);
