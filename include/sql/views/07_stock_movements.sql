-- stock_movements: what moved stock in or out, per outlet, product, local day and movement type.
-- One row per (day, outlet_id, product_id, movement_type) with at least one source line. The day
-- is the outlet's local day (its time_zone when PostgreSQL knows it, else UTC), as in
-- daily_sales_summary; a transfer is dated in each outlet's own zone. Sources:
--   received         SUPPLIER consignments with status RECEIVED: each product line's `received`,
--                    at the consignment's outlet_id
--   transferred_in   OUTLET consignments (transfers) with status RECEIVED: `received`, at outlet_id
--   transferred_out  the same lines, out of source_outlet_id (what left is taken to be what
--                    arrived, so a transfer's in and out balance)
--   returned         RETURN consignments with status SENT (the vendor's done status for a return:
--                    its statuses are OPEN, SENT, CANCELLED) or RECEIVED: each line's `count`, out of
--                    outlet_id (a return is never received at the outlet, so `count`, what was sent
--                    back, is the quantity)
--   stocktake_gain   STOCKTAKE consignments with status STOCKTAKE_COMPLETE or CLOSED: per line
--   stocktake_loss   `received` (found) - `count` (expected; NULL counts as 0, as the vendor's own
--                    example has lines without one, and a count below zero is used as it is):
--                    a gain when above zero, a loss (as a positive quantity) when below, nothing
--                    when equal
--   sold             line items of completed sales (status CLOSED or any *_CLOSED, as
--                    daily_sales_summary), VOIDED items left out: their `quantity` at the sale's
--                    outlet on the sale's local day; returned items (negative quantities) reduce it
-- Every other type and status (open, sent or dispatched orders, cancelled ones, stocktakes in
-- progress) moved nothing yet. Left out: deleted consignments and the lines of deleted ones,
-- deleted consignment lines, deleted sales, sales without a sale_date; lines with no product, no
-- outlet (a transfer without source_outlet_id has no out row), no date, or no quantity (NULL:
-- absent or not a number); and lines whose quantity is 0 (no movement; a sold row whose lines net
-- to 0 is kept). Movements of a deleted outlet or product are kept: they happened. The consignment
-- date is received_at, or consignment_date for one without (returns and stocktakes carry none).
-- Typed columns only, except a sale line item's unit cost, which no typed column holds: its `cost`
-- (2.0) or `pricing.cost` (2026-07), the first present, read when it is a JSON number or a string
-- in plain decimal notation ([-+]digits[.digits], at most 1000 characters); anything else is no cost.
--   day                 the local day of the movement (date)
--   outlet_id           the outlet whose stock moved
--   product_id          the product
--   movement_type       received | transferred_in | transferred_out | returned | stocktake_gain |
--                       stocktake_loss | sold
--   quantity            units moved in the type's direction (positive, except `sold` net of
--                       returns and odd negative values, which pass as they are)
--   stock_change        the signed effect on stock on hand: +quantity for received,
--                       transferred_in and stocktake_gain; -quantity for the others, so
--                       SUM(stock_change) is the net change
--   cost                sum of quantity x unit cost over the row's lines with a cost (the
--                       consignment line's `cost`, the sale line item's cost); NULL when none has one
--   lines               source lines summed into the row (consignment product lines, line items)
--   lines_without_cost  of those, lines without a unit cost (cost covers the others only)
--   time_zone           the zone `day` is local to
CREATE OR REPLACE VIEW stock_movements WITH (security_invoker = true) AS
WITH zones AS (
    SELECT
        o.id,
        CASE WHEN o.time_zone IN (SELECT name FROM pg_timezone_names) THEN o.time_zone ELSE 'UTC' END AS time_zone
    FROM lightspeed_outlets o
),
consignment_lines AS (
    SELECT
        c.type,
        c.status,
        c.outlet_id,
        c.source_outlet_id,
        COALESCE(c.received_at, c.consignment_date) AS moved_at,
        cp.product_id,
        cp.count,
        cp.received,
        cp.cost
    FROM lightspeed_consignment_products cp
    JOIN lightspeed_consignments c ON c.id = cp.consignment_id
    WHERE cp.deleted_at IS NULL
      AND c.deleted_at IS NULL
),
sale_lines AS (
    SELECT
        s.outlet_id,
        li.product_id,
        s.sale_date AS moved_at,
        li.quantity,
        COALESCE(li.data -> 'cost', li.data #> '{pricing,cost}') AS cost
    FROM lightspeed_sales s
    JOIN lightspeed_sale_line_items li ON li.sale_id = s.id
    WHERE (s.status = 'CLOSED' OR s.status LIKE '%\_CLOSED')
      AND s.deleted_at IS NULL
      AND li.status IS DISTINCT FROM 'VOIDED'
      AND jsonb_typeof(li.data) = 'object'
),
movements AS (
    SELECT outlet_id, product_id, moved_at, 'received' AS movement_type, received AS quantity, cost
    FROM consignment_lines
    WHERE type = 'SUPPLIER' AND status = 'RECEIVED'
    UNION ALL
    SELECT outlet_id, product_id, moved_at, 'transferred_in', received, cost
    FROM consignment_lines
    WHERE type = 'OUTLET' AND status = 'RECEIVED'
    UNION ALL
    SELECT source_outlet_id, product_id, moved_at, 'transferred_out', received, cost
    FROM consignment_lines
    WHERE type = 'OUTLET' AND status = 'RECEIVED'
    UNION ALL
    SELECT outlet_id, product_id, moved_at, 'returned', count, cost
    FROM consignment_lines
    WHERE type = 'RETURN' AND status IN ('SENT', 'RECEIVED')
    UNION ALL
    SELECT
        outlet_id,
        product_id,
        moved_at,
        CASE WHEN received - COALESCE(count, 0) > 0 THEN 'stocktake_gain' ELSE 'stocktake_loss' END,
        abs(received - COALESCE(count, 0)),
        cost
    FROM consignment_lines
    WHERE type = 'STOCKTAKE' AND status IN ('STOCKTAKE_COMPLETE', 'CLOSED')
    UNION ALL
    SELECT
        outlet_id,
        product_id,
        moved_at,
        'sold',
        quantity,
        CASE
            WHEN jsonb_typeof(cost) = 'number' THEN cost::numeric
            WHEN jsonb_typeof(cost) = 'string' AND length(cost #>> '{}') <= 1000
                 AND (cost #>> '{}') ~ '^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)$'
                THEN (cost #>> '{}')::numeric
        END
    FROM sale_lines
)
SELECT
    (m.moved_at AT TIME ZONE COALESCE(z.time_zone, 'UTC'))::date AS day,
    m.outlet_id,
    m.product_id,
    m.movement_type,
    SUM(m.quantity) AS quantity,
    CASE WHEN m.movement_type IN ('received', 'transferred_in', 'stocktake_gain') THEN SUM(m.quantity)
         ELSE -SUM(m.quantity) END AS stock_change,
    SUM(m.quantity * m.cost) AS cost,
    COUNT(*) AS lines,
    COUNT(*) FILTER (WHERE m.cost IS NULL) AS lines_without_cost,
    COALESCE(z.time_zone, 'UTC') AS time_zone
FROM movements m
LEFT JOIN zones z ON z.id = m.outlet_id
WHERE m.outlet_id IS NOT NULL
  AND m.product_id IS NOT NULL
  AND m.moved_at IS NOT NULL
  AND m.quantity IS NOT NULL
  AND m.quantity <> 0
GROUP BY 1, m.outlet_id, m.product_id, m.movement_type, z.time_zone;
