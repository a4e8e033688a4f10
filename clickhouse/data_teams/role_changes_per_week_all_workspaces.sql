-- Role changes per week across all workspaces (weeks start on Monday, UTC), by
-- the role members got, from the daily summary (up to an hour behind the
-- events). Parameter: from_day (a Date, UTC).
SELECT
    toMonday(day) AS week,
    role_after AS new_role,
    sum(events) AS changes
FROM audit.events_daily_actions
WHERE action = 'MEMBER_ROLE_CHANGED'
  AND day >= {from_day:Date}
GROUP BY week, new_role
ORDER BY week, new_role
