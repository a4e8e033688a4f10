"""The query API: filtered, cursor-paginated reads and streaming exports of the audit log."""
