-- inventory_value_by_outlet: what the stock on hand is worth at cost, per outlet. One row per
-- outlet that is not deleted (zeros and value_basis 'none' when it holds no stock). The rows
-- counted are inventory_by_outlet's (so the two agree on units_on_hand): inventory rows not
-- deleted, of products that are not deleted, are active (`active`/`is_active`) and track stock
-- (`has_inventory`); stock on hand is `current_amount`, and only a level above zero is on hand
-- (negative stock is valued at nothing). Each row's units are valued at the row's own
-- `average_cost` (the weighted cost the store keeps per outlet) when it has one, else at the
-- product's `supply_price`; a row with neither adds its units to units_without_cost and nothing to
-- the value. A cost of 0 is a cost. Only typed columns are read (NULL where the source value could
-- not be typed).
--   outlet_id                     the outlet
--   outlet_name                   its name
--   units_on_hand                 sum of stock on hand (= inventory_by_outlet.units_on_hand)
--   value                         value_at_average_cost + value_at_supply_price
--   value_at_average_cost         sum of units x average_cost over rows with an average_cost
--   value_at_supply_price         sum of units x supply_price over rows without an average_cost
--   units_valued_at_average_cost  the units of those rows
--   units_valued_at_supply_price  the units of these
--   units_without_cost            units of rows with neither: units_on_hand is the sum of the three
--   value_basis                   which cost the value rests on: 'average_cost' or 'supply_price'
--                                 when only that one was used, 'mixed' when both, 'none' when no
--                                 unit was valued (units_without_cost says whether some are not)
CREATE OR REPLACE VIEW inventory_value_by_outlet WITH (security_invoker = true) AS
SELECT
    o.id AS outlet_id,
    o.name AS outlet_name,
    COALESCE(st.units_on_hand, 0) AS units_on_hand,
    COALESCE(st.value_at_average_cost, 0) + COALESCE(st.value_at_supply_price, 0) AS value,
    COALESCE(st.value_at_average_cost, 0) AS value_at_average_cost,
    COALESCE(st.value_at_supply_price, 0) AS value_at_supply_price,
    COALESCE(st.units_valued_at_average_cost, 0) AS units_valued_at_average_cost,
    COALESCE(st.units_valued_at_supply_price, 0) AS units_valued_at_supply_price,
    COALESCE(st.units_without_cost, 0) AS units_without_cost,
    CASE
        WHEN st.rows_at_average_cost > 0 AND st.rows_at_supply_price > 0 THEN 'mixed'
        WHEN st.rows_at_average_cost > 0 THEN 'average_cost'
        WHEN st.rows_at_supply_price > 0 THEN 'supply_price'
        ELSE 'none'
    END AS value_basis
FROM lightspeed_outlets o
LEFT JOIN (
    SELECT
        i.outlet_id,
        SUM(i.current_amount) AS units_on_hand,
        SUM(i.current_amount * i.average_cost) FILTER (WHERE i.average_cost IS NOT NULL) AS value_at_average_cost,
        SUM(i.current_amount * p.supply_price) FILTER (WHERE i.average_cost IS NULL) AS value_at_supply_price,
        SUM(i.current_amount) FILTER (WHERE i.average_cost IS NOT NULL) AS units_valued_at_average_cost,
        SUM(i.current_amount) FILTER (WHERE i.average_cost IS NULL AND p.supply_price IS NOT NULL)
            AS units_valued_at_supply_price,
        SUM(i.current_amount) FILTER (WHERE i.average_cost IS NULL AND p.supply_price IS NULL) AS units_without_cost,
        COUNT(*) FILTER (WHERE i.average_cost IS NOT NULL) AS rows_at_average_cost,
        COUNT(*) FILTER (WHERE i.average_cost IS NULL AND p.supply_price IS NOT NULL) AS rows_at_supply_price
    FROM lightspeed_inventory i
    JOIN lightspeed_products p ON p.id = i.product_id
    WHERE i.deleted_at IS NULL
      AND p.deleted_at IS NULL
      AND p.active IS TRUE
      AND p.has_inventory IS TRUE
      AND i.current_amount > 0
    GROUP BY i.outlet_id
) st ON st.outlet_id = o.id
WHERE o.deleted_at IS NULL;
