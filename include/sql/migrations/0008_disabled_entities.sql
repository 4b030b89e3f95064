-- Entities a store does not grant (LIGHTSPEED_ENTITIES_DISABLED): `migrate` sets disabled_at when
-- an entity is switched off and clears it when switched back on; sync_health rates such an
-- entity DISABLED (neither OK nor ALERT) and the stale alert passes it by.
ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS disabled_at TIMESTAMPTZ;
