-- Who changed this integration, and what did they change?
-- Every action on one integration of a workspace, newest first, with the
-- before / after of its payload. Parameters: workspace, integration_id
-- (the integration's target id, e.g. int_github).
SELECT
    occurred_at,
    action,
    actor_kind,
    actor_display AS actor,
    target_display AS integration,
    JSONExtractRaw(payload, 'before') AS before,
    JSONExtractRaw(payload, 'after') AS after
FROM audit.events
WHERE workspace_id = {workspace:String}
  AND target_kind = 'integration'
  AND target_id = {integration_id:String}
ORDER BY occurred_at DESC, id DESC
LIMIT 1 BY occurred_at, id
