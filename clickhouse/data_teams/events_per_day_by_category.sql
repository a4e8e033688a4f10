-- Events per day and category since a day, all workspaces together, from the
-- daily summary. Parameter: from_day (a Date, UTC).
SELECT
    day,
    category,
    sum(events) AS events
FROM audit.events_daily_actions
WHERE day >= {from_day:Date}
GROUP BY day, category
ORDER BY day, category
