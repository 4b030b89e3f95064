-- Entities an API version does not list (issue 18: purchase orders, gift cards and store credit
-- exist from dated versions on): `migrate` switches them off as it does the ones in
-- LIGHTSPEED_ENTITIES_DISABLED, and says why here; sync_health shows the reason.
ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS disabled_reason TEXT;
