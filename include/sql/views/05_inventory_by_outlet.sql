-- inventory_by_outlet: stock level and stock value per outlet. One row per outlet that is not
-- deleted (zeros when it holds no stock). Counted: inventory rows not deleted (deleted_at is set
-- when the API no longer lists the row) of products that are not deleted, are active
-- (`active`/`is_active`) and track stock (`has_inventory`): the products low_stock_products
-- looks at. Stock on hand is `current_amount` (the API's inventory_level unless a record also
-- sends current_amount), as in low_stock_products. Negative stock (sold before it was received)
-- is not on hand: it counts in products_tracked, never in the units or values. Only typed
-- columns are read (NULL where the source value could not be typed).
--   outlet_id                    the outlet
--   outlet_name                  its name
--   products_tracked             inventory rows counted (product x outlet), whatever their level
--   products_in_stock            of those, rows with stock on hand > 0
--   units_on_hand                sum of stock on hand over products_in_stock
--   stock_value_at_supply_price  sum of units x the product's supply_price (a product without a
--                                supply_price adds nothing)
--   stock_value_at_retail_price  sum of units x the product's price_excluding_tax (same rule)
--   products_low_stock           rows at or below their reorder_point (reorder_point set): this
--                                outlet's rows of low_stock_products
CREATE OR REPLACE VIEW inventory_by_outlet WITH (security_invoker = true) AS
SELECT
    o.id AS outlet_id,
    o.name AS outlet_name,
    COALESCE(st.products_tracked, 0) AS products_tracked,
    COALESCE(st.products_in_stock, 0) AS products_in_stock,
    COALESCE(st.units_on_hand, 0) AS units_on_hand,
    COALESCE(st.stock_value_at_supply_price, 0) AS stock_value_at_supply_price,
    COALESCE(st.stock_value_at_retail_price, 0) AS stock_value_at_retail_price,
    COALESCE(st.products_low_stock, 0) AS products_low_stock
FROM lightspeed_outlets o
LEFT JOIN (
    SELECT
        i.outlet_id,
        COUNT(*) AS products_tracked,
        COUNT(*) FILTER (WHERE i.current_amount > 0) AS products_in_stock,
        SUM(i.current_amount) FILTER (WHERE i.current_amount > 0) AS units_on_hand,
        SUM(i.current_amount * p.supply_price) FILTER (WHERE i.current_amount > 0) AS stock_value_at_supply_price,
        SUM(i.current_amount * p.price_excluding_tax) FILTER (WHERE i.current_amount > 0)
            AS stock_value_at_retail_price,
        COUNT(*) FILTER (WHERE i.reorder_point IS NOT NULL AND i.current_amount <= i.reorder_point)
            AS products_low_stock
    FROM lightspeed_inventory i
    JOIN lightspeed_products p ON p.id = i.product_id
    WHERE i.deleted_at IS NULL
      AND p.deleted_at IS NULL
      AND p.active IS TRUE
      AND p.has_inventory IS TRUE
    GROUP BY i.outlet_id
) st ON st.outlet_id = o.id
WHERE o.deleted_at IS NULL;
