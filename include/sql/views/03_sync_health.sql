-- Per entity: when it last synced successfully and whether that is recent enough.
-- OK within 2 hours, WARNING after 2 hours, ALERT after 25 hours or never.
CREATE OR REPLACE VIEW sync_health WITH (security_invoker = true) AS
SELECT
    entity_type,
    last_attempt_at AS last_sync_timestamp,
    last_sync_time AS last_successful_sync,
    CASE
        WHEN last_sync_time IS NULL OR last_sync_time < now() - INTERVAL '25 hours' THEN 'ALERT'
        WHEN last_sync_time < now() - INTERVAL '2 hours' THEN 'WARNING'
        ELSE 'OK'
    END AS sync_status,
    status,
    last_version,
    error_message,
    ROUND((EXTRACT(EPOCH FROM now() - last_sync_time) / 3600)::numeric, 2) AS hours_since_success
FROM sync_state;
