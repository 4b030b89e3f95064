-- customer_growth_by_month: customers gained per calendar month, in UTC (months of created_at
-- and sale_date in UTC, whatever the outlets' zones). One row per month from the first month with
-- a new or first-time buying customer to the last such month, gaps included (zeros). Deleted
-- customers (deleted_at set) are left out everywhere; a customer without created_at counts in no
-- month's new_customers. Only typed columns are read (NULL where the source value could not be
-- typed).
--   month                     the first day of the month (date, UTC)
--   new_customers             customers created that month
--   cumulative_customers      customers created in or before that month
--   first_purchase_customers  customers whose first completed sale (status CLOSED or any
--                             *_CLOSED, not deleted, by sale_date) fell in that month
CREATE OR REPLACE VIEW customer_growth_by_month WITH (security_invoker = true) AS
WITH customers AS (
    SELECT c.id, date_trunc('month', c.created_at AT TIME ZONE 'UTC')::date AS month
    FROM lightspeed_customers c
    WHERE c.deleted_at IS NULL
),
new_customers AS (
    SELECT month, COUNT(*) AS n
    FROM customers
    WHERE month IS NOT NULL
    GROUP BY month
),
first_purchases AS (
    SELECT month, COUNT(*) AS n
    FROM (
        SELECT date_trunc('month', MIN(s.sale_date) AT TIME ZONE 'UTC')::date AS month
        FROM lightspeed_sales s
        JOIN customers c ON c.id = s.customer_id
        WHERE s.deleted_at IS NULL
          AND s.sale_date IS NOT NULL
          AND (s.status = 'CLOSED' OR s.status LIKE '%\_CLOSED')
        GROUP BY s.customer_id
    ) f
    GROUP BY month
),
months AS (
    SELECT g.month::date AS month
    FROM (
        SELECT MIN(m) AS first_month, MAX(m) AS last_month
        FROM (SELECT month AS m FROM new_customers UNION ALL SELECT month FROM first_purchases) b
    ) r
    CROSS JOIN LATERAL generate_series(
        r.first_month::timestamp, r.last_month::timestamp, INTERVAL '1 month'
    ) AS g(month)
)
SELECT
    m.month,
    COALESCE(n.n, 0) AS new_customers,
    (SUM(COALESCE(n.n, 0)) OVER (ORDER BY m.month))::bigint AS cumulative_customers,
    COALESCE(f.n, 0) AS first_purchase_customers
FROM months m
LEFT JOIN new_customers n ON n.month = m.month
LEFT JOIN first_purchases f ON f.month = m.month;
