-- Role changes per week (weeks start on Monday, UTC), split by the role a
-- member had before and the role they got. Parameters: workspace, since.
SELECT
    toMonday(occurred_at) AS week,
    JSONExtractString(payload, 'before', 'role') AS from_role,
    JSONExtractString(payload, 'after', 'role') AS to_role,
    uniqExact(id) AS changes
FROM audit.events
WHERE workspace_id = {workspace:String}
  AND action = 'MEMBER_ROLE_CHANGED'
  AND occurred_at >= {since:DateTime64(6, 'UTC')}
GROUP BY week, from_role, to_role
ORDER BY week, from_role, to_role
