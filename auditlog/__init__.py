"""auditlog: the CLI, the settings object and the embedded run mode."""
