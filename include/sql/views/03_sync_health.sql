-- Per entity: is the copy current and sound? (sync_status, with the reason in health_reason)
--   DISABLED switched off by LIGHTSPEED_ENTITIES_DISABLED (the store does not grant it), or not
--            listed by the API version in use (sync_state.disabled_reason says which): not
--            synced, neither OK nor ALERT, and no stale alert;
--   ALERT    the entity's latest sync failed (however recent its last success), it never
--            succeeded, or its last success is older than 25 h (for schedules longer than a
--            day: the interval + 25 h);
--   WARNING  its last success is older than the schedule's interval + 1 h (hourly: 2 h; daily:
--            25 h, so a healthy daily sync is OK all day), or its latest validation found
--            orphans, duplicates or rows in no known record shape (data kept, typed columns
--            NULL), or its last sync left a warning (warning_message);
--   OK       otherwise. A later successful sync turns it OK again.
-- The interval comes from sync_settings (written by the `migrate` task; 24 h if absent).
CREATE OR REPLACE VIEW sync_health WITH (security_invoker = true) AS
WITH limits AS (
    SELECT make_interval(secs => c.interval_s + 3600) AS warn_after,
           CASE WHEN c.interval_s <= 86400 THEN INTERVAL '25 hours'
                ELSE make_interval(secs => c.interval_s + 90000) END AS alert_after
    FROM (SELECT COALESCE((SELECT (value #>> '{}')::double precision FROM sync_settings
                           WHERE key = 'schedule_interval_s'), 86400) AS interval_s) c
)
SELECT
    s.entity_type,
    s.last_attempt_at AS last_sync_timestamp,
    s.last_sync_time AS last_successful_sync,
    h.sync_status,
    s.status,
    s.last_version,
    s.error_message,
    ROUND((EXTRACT(EPOCH FROM now() - s.last_sync_time) / 3600)::numeric, 2) AS hours_since_success,
    h.reason AS health_reason,
    s.warning_message,
    v.orphan_count,
    v.duplicate_count,
    v.checked_at AS validated_at,
    ROUND((EXTRACT(EPOCH FROM l.warn_after) / 3600)::numeric, 2) AS warning_after_hours,
    ROUND((EXTRACT(EPOCH FROM l.alert_after) / 3600)::numeric, 2) AS alert_after_hours,
    v.unknown_shape_count,
    s.api_version,
    s.disabled_at
FROM sync_state s
CROSS JOIN limits l
LEFT JOIN LATERAL (
    SELECT x.orphan_count, x.duplicate_count, x.unknown_shape_count, x.checked_at
    FROM sync_validation x WHERE x.entity_type = s.entity_type ORDER BY x.id DESC LIMIT 1
) v ON true
CROSS JOIN LATERAL (
    SELECT
        CASE
            WHEN s.disabled_at IS NOT NULL THEN 'DISABLED'
            WHEN s.status = 'failed' OR s.last_sync_time IS NULL OR s.last_sync_time < now() - l.alert_after
                THEN 'ALERT'
            WHEN s.last_sync_time < now() - l.warn_after OR v.orphan_count > 0 OR v.duplicate_count > 0
                OR v.unknown_shape_count > 0 OR s.warning_message IS NOT NULL
                THEN 'WARNING'
            ELSE 'OK'
        END AS sync_status,
        CASE
            WHEN s.disabled_at IS NOT NULL
                THEN coalesce(s.disabled_reason, 'disabled by LIGHTSPEED_ENTITIES_DISABLED') || ' since ' || to_char(s.disabled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
            WHEN s.status = 'failed' THEN 'latest sync failed'
            WHEN s.last_sync_time IS NULL THEN 'never synced successfully'
            WHEN s.last_sync_time < now() - l.alert_after OR s.last_sync_time < now() - l.warn_after
                THEN 'no successful sync for '
                     || ROUND((EXTRACT(EPOCH FROM now() - s.last_sync_time) / 3600)::numeric, 1) || ' h'
            WHEN v.orphan_count > 0 OR v.duplicate_count > 0
                THEN 'latest validation found ' || v.orphan_count || ' orphans and '
                     || v.duplicate_count || ' duplicates'
            WHEN v.unknown_shape_count > 0
                THEN v.unknown_shape_count || ' rows in no known record shape (data kept, typed columns empty)'
            WHEN s.warning_message IS NOT NULL THEN s.warning_message
        END AS reason
) h;
