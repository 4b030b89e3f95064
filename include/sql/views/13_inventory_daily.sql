-- inventory_daily: the stock level of every inventory record at the close of each outlet-local
-- day, from history mode (lightspeed_inventory_history: LIGHTSPEED_HISTORY keeps inventory's past
-- versions by default). One row per inventory record (product x outlet) and day on which it
-- existed and was not deleted, from the first day history knows (a version's valid_from; for the
-- versions there when history was switched on, their updated_at) to the outlet's today. The level
-- at close of day D is the version valid just before the outlet's midnight ending D (valid_from
-- before it, valid_to at or after it, or still current); today's row holds the level so far.
-- The day is the outlet's local day (its time_zone when PostgreSQL knows it, else UTC).
-- Filter on `day` (it is pushed into the calendar): `WHERE day >= current_date - 30`.
-- Several changes between two syncs are one change here: history holds what each sync saw.
--   day             the outlet-local day
--   product_id      the product
--   outlet_id       the outlet
--   inventory_id    the inventory record (one per product and outlet)
--   closing_level   stock on hand (current_amount) at the close of the day (NULL: not typed)
--   out_of_stock    closing_level <= 0 (NULL when closing_level is NULL)
--   day_closed      false for the outlet's today (the level so far)
--   version         the inventory version the level comes from
CREATE OR REPLACE VIEW inventory_daily WITH (security_invoker = true) AS
WITH zoned AS (
    SELECT o.id AS outlet_id,
        CASE WHEN o.time_zone IN (SELECT name FROM pg_timezone_names) THEN o.time_zone ELSE 'UTC' END AS tz
    FROM lightspeed_outlets o
),
versions AS (
    SELECT h.id, h.product_id, h.outlet_id, h.current_amount, h.version, h.valid_from, h.valid_to,
        COALESCE(z.tz, 'UTC') AS tz
    FROM lightspeed_inventory_history h
    LEFT JOIN zoned z ON z.outlet_id = h.outlet_id
    WHERE NOT h.deleted
),
calendar AS (  -- every UTC day history spans, a day either side for the zones' offsets
    SELECT g::date AS day
    FROM generate_series(
        (SELECT (min(valid_from) AT TIME ZONE 'UTC')::date - 1 FROM lightspeed_inventory_history)::timestamp,
        ((now() AT TIME ZONE 'UTC')::date + 1)::timestamp,
        INTERVAL '1 day'
    ) AS g
)
SELECT
    c.day,
    v.product_id,
    v.outlet_id,
    v.id AS inventory_id,
    v.current_amount AS closing_level,
    v.current_amount <= 0 AS out_of_stock,
    ((c.day + 1)::timestamp AT TIME ZONE v.tz) <= now() AS day_closed,
    v.version
FROM calendar c
JOIN versions v
    ON v.valid_from < ((c.day + 1)::timestamp AT TIME ZONE v.tz)
    AND (v.valid_to IS NULL OR v.valid_to >= ((c.day + 1)::timestamp AT TIME ZONE v.tz))
WHERE c.day <= (now() AT TIME ZONE v.tz)::date;
