"""ClickHouse: numbered SQL migrations, the client factory, and the events store."""
