-- daily_transactions_by_outlet: transaction volume per outlet and local day, every sale counted
-- once by its status group. One row per outlet and day with at least one sale. The day is the
-- outlet's local day (its time_zone when PostgreSQL knows it, else UTC), as in
-- daily_sales_summary. Deleted sales (deleted_at set) and sales without a sale_date are left out;
-- sales of a deleted outlet are kept (they happened). Only typed columns are read, and those are
-- NULL where the source value could not be typed, so an odd value never breaks the view.
--   sale_date           the outlet's local day of the sale (date)
--   outlet_id           the sales' outlet
--   outlet_name         the outlet's name (NULL when the outlet is not in lightspeed_outlets)
--   time_zone           the zone sale_date is local to
--   sales_count         every sale of the day: completed_count + voided_count + open_count
--   completed_count     completed sales: status CLOSED or any *_CLOSED (LAYBY_CLOSED,
--                       ONACCOUNT_CLOSED, ...: a paid-off layby or on-account sale is revenue too);
--                       equals daily_sales_summary.transaction_count
--   voided_count        status VOIDED
--   open_count          every other status (SAVED, LAYBY, ONACCOUNT, ... or none): not revenue yet
--   completed_revenue   sum(total_price) of the completed sales (tax excluded; 0 when none);
--                       equals daily_sales_summary.total_revenue
--   average_sale_value  completed_revenue / completed sales with a total (NULL when none)
--   items_sold          sum(quantity) of the completed sales' line items, VOIDED items left out
--                       (returned items count negative); 0 when none
CREATE OR REPLACE VIEW daily_transactions_by_outlet WITH (security_invoker = true) AS
WITH outlets AS (
    SELECT
        o.id,
        o.name,
        CASE WHEN o.time_zone IN (SELECT name FROM pg_timezone_names) THEN o.time_zone ELSE 'UTC' END AS time_zone
    FROM lightspeed_outlets o
),
sales AS (
    SELECT
        s.id,
        s.outlet_id,
        s.total_price,
        (s.sale_date AT TIME ZONE COALESCE(o.time_zone, 'UTC'))::date AS sale_date,
        o.name AS outlet_name,
        COALESCE(o.time_zone, 'UTC') AS time_zone,
        CASE
            WHEN s.status = 'CLOSED' OR s.status LIKE '%\_CLOSED' THEN 'completed'
            WHEN s.status = 'VOIDED' THEN 'voided'
            ELSE 'open'
        END AS status_group
    FROM lightspeed_sales s
    LEFT JOIN outlets o ON o.id = s.outlet_id
    WHERE s.deleted_at IS NULL
      AND s.sale_date IS NOT NULL
)
SELECT
    s.sale_date,
    s.outlet_id,
    s.outlet_name,
    s.time_zone,
    COUNT(*) AS sales_count,
    COUNT(*) FILTER (WHERE s.status_group = 'completed') AS completed_count,
    COUNT(*) FILTER (WHERE s.status_group = 'voided') AS voided_count,
    COUNT(*) FILTER (WHERE s.status_group = 'open') AS open_count,
    COALESCE(SUM(s.total_price) FILTER (WHERE s.status_group = 'completed'), 0) AS completed_revenue,
    AVG(s.total_price) FILTER (WHERE s.status_group = 'completed') AS average_sale_value,
    COALESCE(SUM(q.quantity), 0) AS items_sold
FROM sales s
LEFT JOIN LATERAL (
    SELECT SUM(li.quantity) AS quantity
    FROM lightspeed_sale_line_items li
    WHERE s.status_group = 'completed' AND li.sale_id = s.id AND li.status IS DISTINCT FROM 'VOIDED'
) q ON true
GROUP BY s.sale_date, s.outlet_id, s.outlet_name, s.time_zone;
