-- Completed sales per local day and outlet. "Completed" is CLOSED and every *_CLOSED
-- status (a paid-off layby or on-account sale is revenue too). The day is the
-- outlet's local day when its time_zone is one PostgreSQL knows, else UTC. API 2.0
-- sales carry no total_discount: the discount is summed from the non-voided line items.
CREATE OR REPLACE VIEW daily_sales_summary WITH (security_invoker = true) AS
SELECT
    (s.sale_date AT TIME ZONE COALESCE(tz.time_zone, 'UTC'))::date AS sale_date,
    s.outlet_id,
    COUNT(*) AS transaction_count,
    SUM(s.total_price) AS total_revenue,
    SUM(s.total_tax) AS total_tax,
    COALESCE(SUM(d.discount), 0) AS total_discount,
    COALESCE(tz.time_zone, 'UTC') AS time_zone
FROM lightspeed_sales s
LEFT JOIN (
    SELECT o.id, o.time_zone
    FROM lightspeed_outlets o
    WHERE o.time_zone IN (SELECT name FROM pg_timezone_names)
) tz ON tz.id = s.outlet_id
LEFT JOIN LATERAL (
    SELECT SUM(COALESCE(li.discount_total, li.discount * li.quantity, 0)) AS discount
    FROM lightspeed_sale_line_items li
    WHERE li.sale_id = s.id AND li.status IS DISTINCT FROM 'VOIDED'
) d ON true
WHERE (s.status = 'CLOSED' OR s.status LIKE '%\_CLOSED')
  AND s.deleted_at IS NULL
  AND s.sale_date IS NOT NULL
GROUP BY 1, 2, 7;
