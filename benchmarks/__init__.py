"""Benchmarks: the embedded ClickHouse engine next to a PostgreSQL audit table (``make bench``).

Not part of the test suite; ``tests/integration/test_benchmark_smoke.py`` runs a
tiny dataset through the same code so that it keeps working.
"""
