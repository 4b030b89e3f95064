-- purchase_order_pipeline: what is on order and what it will cost. One row per open purchase
-- order (API 2026-04 on; empty in 2.0, which lists no purchase orders): not deleted, and status not
-- RECEIVED, CANCELLED or CLOSED (OPEN, SENT, PARTIALLY_RECEIVED and any other status still
-- expects stock). Group it by supplier_id and outlet_id for the pipeline per supplier and outlet.
-- Per order line (not deleted): ordered is its quantity; received is the received_quantity of the
-- lines of the order's deliveries that are RECEIVED and not deleted which name that order line;
-- outstanding is ordered - received, never below 0. Only typed columns are read.
--   purchase_order_id     the order
--   order_number          its number
--   status                its status
--   supplier_id           the supplier
--   supplier_name         its name (NULL when the supplier is not in lightspeed_suppliers)
--   outlet_id             the delivery outlet (delivery_outlet_id)
--   outlet_name           its name
--   due_at                when the order is due (NULL: no due date)
--   overdue               due_at is past and something is outstanding (false without a due_at)
--   days_overdue          whole days since due_at when overdue, else 0
--   lines                 order lines counted
--   quantity_ordered      sum of the lines' quantity (a quantity that could not be typed: 0)
--   quantity_received     sum of what the received deliveries brought against those lines
--   quantity_outstanding  sum over the lines of max(ordered - received, 0)
--   cost_outstanding      sum over the lines of outstanding x cost_price, over the lines that have
--                         a cost_price (NULL when none has: costs need `products:read:costs`)
--   lines_without_cost    lines with something outstanding and no cost_price (cost_outstanding
--                         is then partial)
CREATE OR REPLACE VIEW purchase_order_pipeline WITH (security_invoker = true) AS
WITH received AS (
    SELECT dli.purchase_order_line_item_id AS line_id, SUM(COALESCE(dli.received_quantity, 0)) AS quantity
    FROM lightspeed_purchase_order_delivery_line_items dli
    JOIN lightspeed_purchase_order_deliveries d ON d.id = dli.purchase_order_delivery_id
    WHERE dli.deleted_at IS NULL AND d.deleted_at IS NULL AND d.status = 'RECEIVED'
    GROUP BY 1
),
lines AS (
    SELECT
        li.purchase_order_id,
        COALESCE(li.quantity, 0) AS ordered,
        COALESCE(r.quantity, 0) AS received,
        GREATEST(COALESCE(li.quantity, 0) - COALESCE(r.quantity, 0), 0) AS outstanding,
        li.cost_price
    FROM lightspeed_purchase_order_line_items li
    LEFT JOIN received r ON r.line_id = li.id
    WHERE li.deleted_at IS NULL
),
totals AS (
    SELECT
        l.purchase_order_id,
        COUNT(*) AS lines,
        SUM(l.ordered) AS quantity_ordered,
        SUM(l.received) AS quantity_received,
        SUM(l.outstanding) AS quantity_outstanding,
        SUM(l.outstanding * l.cost_price) AS cost_outstanding,
        COUNT(*) FILTER (WHERE l.outstanding > 0 AND l.cost_price IS NULL) AS lines_without_cost
    FROM lines l
    GROUP BY 1
)
SELECT
    po.id AS purchase_order_id,
    po.order_number,
    po.status,
    po.supplier_id,
    s.name AS supplier_name,
    po.delivery_outlet_id AS outlet_id,
    o.name AS outlet_name,
    po.due_at,
    COALESCE(po.due_at < now() AND COALESCE(t.quantity_outstanding, 0) > 0, false) AS overdue,
    CASE WHEN po.due_at < now() AND COALESCE(t.quantity_outstanding, 0) > 0
         THEN EXTRACT(DAY FROM now() - po.due_at)::integer ELSE 0 END AS days_overdue,
    COALESCE(t.lines, 0) AS lines,
    COALESCE(t.quantity_ordered, 0) AS quantity_ordered,
    COALESCE(t.quantity_received, 0) AS quantity_received,
    COALESCE(t.quantity_outstanding, 0) AS quantity_outstanding,
    t.cost_outstanding,
    COALESCE(t.lines_without_cost, 0) AS lines_without_cost
FROM lightspeed_purchase_orders po
LEFT JOIN totals t ON t.purchase_order_id = po.id
LEFT JOIN lightspeed_suppliers s ON s.id = po.supplier_id
LEFT JOIN lightspeed_outlets o ON o.id = po.delivery_outlet_id
WHERE po.deleted_at IS NULL
  AND (po.status IS NULL OR po.status NOT IN ('RECEIVED', 'CANCELLED', 'CLOSED'));
