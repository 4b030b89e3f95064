-- Stock at or below its reorder point, for live products that are active and track
-- stock (API 2.0: `active`/`is_active` and `has_inventory`; there is no track_inventory),
-- in outlets that are not deleted. Inventory rows no longer listed by the API (deleted_at
-- set by reconciliation) are left out too.
CREATE OR REPLACE VIEW low_stock_products WITH (security_invoker = true) AS
SELECT
    p.id,
    p.name,
    p.sku,
    i.outlet_id,
    i.current_amount,
    i.reorder_point,
    i.reorder_amount,
    i.id AS inventory_id
FROM lightspeed_inventory i
JOIN lightspeed_products p ON p.id = i.product_id
WHERE i.reorder_point IS NOT NULL
  AND i.current_amount <= i.reorder_point
  AND i.deleted_at IS NULL
  AND p.deleted_at IS NULL
  AND p.active IS TRUE
  AND p.has_inventory IS TRUE
  AND NOT EXISTS (
      SELECT 1 FROM lightspeed_outlets o WHERE o.id = i.outlet_id AND o.deleted_at IS NOT NULL
  );
