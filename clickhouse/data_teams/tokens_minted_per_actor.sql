-- API tokens minted per actor since a day, across all workspaces: who creates
-- credentials. From the daily summary, sorted by action: one action's days are
-- a few granules. Parameter: from_day (a Date, UTC).
SELECT
    workspace_id,
    actor_display AS actor,
    sum(events) AS minted
FROM audit.events_daily_actions
WHERE action = 'API_TOKEN_CREATED'
  AND day >= {from_day:Date}
GROUP BY workspace_id, actor
ORDER BY minted DESC, workspace_id, actor
