-- promotion_performance: what each promotion sold and gave away, per outlet and local day. One row
-- per (day, outlet_id, promotion_id) with at least one line item the promotion applied to. The
-- source is the `promotions` array of each sale line item, which API 2026-07 sends
-- (`SaleResponseLineItem.promotions[]`, elements `LineItemPromotion`: {id, name, amount,
-- promo_code, promo_code_id}); 2.0's line items carry none, so the view is empty for data read
-- through 2.0. Counted: the line items of completed sales (status CLOSED or any *_CLOSED, as
-- daily_sales_summary), VOIDED items left out, sales deleted or without a sale_date left out; an
-- element counts when it is an object whose `id` is a non-empty string (anything else in the array
-- is passed by). The day is the sale's outlet's local day (its time_zone when PostgreSQL knows it,
-- else UTC), as in daily_sales_summary; sales without an outlet are left out. A line item carrying
-- the same promotion twice counts once in line_items and units, and both amounts in discount.
-- The line item's typed `quantity` is read; the element's `amount` from the line item's `data`
-- (no typed column holds it) when it is a JSON number or a string in plain decimal notation
-- ([-+]digits[.digits], at most 1000 characters); anything else (null, "n/a") is an unknown amount.
--   day              the sale's local day (date)
--   outlet_id        the sale's outlet
--   promotion_id     the element's `id`
--   promotion_name   the promotion's name in lightspeed_promotions; NULL when that promotion is
--                    unknown there or deleted (no longer listed)
--   time_zone        the zone `day` is local to
--   sales_count      completed sales with a line item the promotion applied to
--   line_items       line items it applied to
--   units            sum of those line items' quantities (returns count negative; a quantity that
--                    could not be typed adds nothing)
--   discount         sum of the known amounts, as the API gives them (the promotion's discount on
--                    the line; 0 when none is known)
--   amounts_unknown  elements whose amount is missing, null or not a number (not in discount)
CREATE OR REPLACE VIEW promotion_performance WITH (security_invoker = true) AS
WITH zones AS (
    SELECT
        o.id,
        CASE WHEN o.time_zone IN (SELECT name FROM pg_timezone_names) THEN o.time_zone ELSE 'UTC' END AS time_zone
    FROM lightspeed_outlets o
),
elements AS (
    SELECT
        s.id AS sale_id,
        s.outlet_id,
        s.sale_date,
        li.position,
        li.quantity,
        e.value ->> 'id' AS promotion_id,
        CASE
            WHEN jsonb_typeof(e.value -> 'amount') = 'number' THEN (e.value -> 'amount')::numeric
            WHEN jsonb_typeof(e.value -> 'amount') = 'string' AND length(e.value ->> 'amount') <= 1000
                 AND (e.value ->> 'amount') ~ '^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)$'
                THEN (e.value ->> 'amount')::numeric
        END AS amount
    FROM lightspeed_sales s
    JOIN lightspeed_sale_line_items li ON li.sale_id = s.id
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(li.data -> 'promotions') = 'array' THEN li.data -> 'promotions' END
    ) AS e(value)
    WHERE (s.status = 'CLOSED' OR s.status LIKE '%\_CLOSED')
      AND s.deleted_at IS NULL
      AND s.sale_date IS NOT NULL
      AND s.outlet_id IS NOT NULL
      AND li.status IS DISTINCT FROM 'VOIDED'
      AND jsonb_typeof(e.value -> 'id') = 'string'
      AND e.value ->> 'id' <> ''
),
per_line AS (
    SELECT
        sale_id,
        outlet_id,
        sale_date,
        position,
        promotion_id,
        MAX(quantity) AS quantity,
        SUM(amount) AS amount,
        COUNT(*) FILTER (WHERE amount IS NULL) AS amounts_unknown
    FROM elements
    GROUP BY sale_id, outlet_id, sale_date, position, promotion_id
)
SELECT
    (l.sale_date AT TIME ZONE COALESCE(z.time_zone, 'UTC'))::date AS day,
    l.outlet_id,
    l.promotion_id,
    p.name AS promotion_name,
    COALESCE(z.time_zone, 'UTC') AS time_zone,
    COUNT(DISTINCT l.sale_id) AS sales_count,
    COUNT(*) AS line_items,
    COALESCE(SUM(l.quantity), 0) AS units,
    COALESCE(SUM(l.amount), 0) AS discount,
    SUM(l.amounts_unknown)::bigint AS amounts_unknown
FROM per_line l
LEFT JOIN zones z ON z.id = l.outlet_id
LEFT JOIN lightspeed_promotions p ON p.id = l.promotion_id AND p.deleted_at IS NULL
GROUP BY 1, l.outlet_id, l.promotion_id, p.name, z.time_zone;
