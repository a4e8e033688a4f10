-- API tokens minted last quarter, by actor: who creates credentials, and how
-- many. "Last quarter" is the previous calendar quarter in UTC. Parameter:
-- workspace.
SELECT
    actor_kind,
    actor_display AS actor,
    uniqExact(id) AS tokens_minted,
    arraySort(groupUniqArray(target_display)) AS token_names
FROM audit.events
WHERE workspace_id = {workspace:String}
  AND action = 'API_TOKEN_CREATED'
  AND occurred_at >= toStartOfQuarter(now('UTC')) - INTERVAL 1 QUARTER
  AND occurred_at < toStartOfQuarter(now('UTC'))
GROUP BY actor_kind, actor
ORDER BY tokens_minted DESC, actor
