"""Prometheus metrics of the sequencer (served by ``auditlog sequence`` on ``transparency.metrics_port``)."""

from prometheus_client import Counter, Gauge

LEAVES = Counter("auditlog_sequencer_leaves_total", "Events appended as leaves of their workspace's log")
CHECKPOINTS = Counter("auditlog_sequencer_checkpoints_total", "Signed checkpoints stored")
ROUND_FAILURES = Counter("auditlog_sequencer_round_failures_total", "Rounds that failed and were retried")
LAST_ROUND = Gauge("auditlog_sequencer_last_round_timestamp_seconds",
                   "Unix time of the last round that completed: alert when it stops moving")
UNPUBLISHED = Gauge("auditlog_sequencer_unpublished_checkpoints",
                    "Checkpoints stored but not yet published on the checkpoint topic")
