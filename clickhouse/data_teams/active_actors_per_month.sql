-- Distinct active actors per workspace and month (UTC) since a day, from the
-- daily summary of actors. Parameter: from_day (a Date, UTC).
SELECT
    workspace_id,
    toStartOfMonth(day) AS month,
    uniqExact(actor_id) AS actors
FROM audit.events_daily_actors
WHERE day >= {from_day:Date}
GROUP BY workspace_id, month
ORDER BY workspace_id, month
