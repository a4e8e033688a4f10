-- The 20 busiest actors of every workspace since a day, from the daily
-- summary of actors. Parameter: from_day (a Date, UTC).
SELECT
    workspace_id,
    actor_display AS actor,
    sum(events) AS events
FROM audit.events_daily_actors
WHERE day >= {from_day:Date}
GROUP BY workspace_id, actor
ORDER BY workspace_id, events DESC, actor
LIMIT 20 BY workspace_id
