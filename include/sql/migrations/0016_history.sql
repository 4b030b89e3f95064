-- History mode (issue 19): which entities keep their past versions, and since when.
-- The versions tables, the `lightspeed_<entity>_history` views, the `_as_of` functions and
-- the triggers are derived from the entity registry and LIGHTSPEED_HISTORY by `migrate`
-- (warehouse/history.py), like the audit triggers.
CREATE TABLE IF NOT EXISTS sync_history (
    entity_type TEXT PRIMARY KEY,
    enabled BOOLEAN NOT NULL,
    enabled_at TIMESTAMPTZ,            -- when history was (last) switched on: rows older are its start
    disabled_at TIMESTAMPTZ,           -- when it was (last) switched off
    pruned_at TIMESTAMPTZ,             -- the last retention pass that removed rows
    pruned_rows BIGINT NOT NULL DEFAULT 0,
    versions_rows BIGINT,              -- past versions kept, counted by `finalize` after its pruning
    oldest_at TIMESTAMPTZ,             -- the earliest valid_from among them
    measured_at TIMESTAMPTZ
);

-- Figures a view computes slowly, computed once a run by `finalize` for the health page (which
-- loads every minute): the stock's value at each of the last 30 days' close, from inventory_daily.
CREATE TABLE IF NOT EXISTS sync_daily_figures (
    metric TEXT NOT NULL,
    day DATE NOT NULL,
    value NUMERIC,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (metric, day)
);
