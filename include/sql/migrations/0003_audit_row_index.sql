-- 0003: a cheaper index for the audit trail's per-row history.
-- The (table_name, row_id, changed_at) index compared random row ids with the database's
-- linguistic collation on every audited write (about 10% of the customers sync, measured
-- by bench/audit_overhead.py). Row ids are opaque: compare them bytewise, index them alone.
-- Per-row history: WHERE row_id = $1 ORDER BY id (id follows commit order within a row).
DROP INDEX IF EXISTS idx_audit_log_row;
ALTER TABLE lightspeed_audit_log ALTER COLUMN row_id TYPE TEXT COLLATE "C";
CREATE INDEX IF NOT EXISTS idx_audit_log_row_id ON lightspeed_audit_log (row_id);
