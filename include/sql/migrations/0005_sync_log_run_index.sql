-- The health page and the run summaries read sync_log by run (metadata->>'run_id'): an index
-- keeps that a lookup as the log grows (a year of hourly runs is about 300 000 rows).
CREATE INDEX IF NOT EXISTS idx_sync_log_run_id ON sync_log ((metadata->>'run_id'), id);
