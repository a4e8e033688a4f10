"""The embedded engine starts with the uncompressed cache size from settings."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.clickhouse

PROBE = """
import sys
from clickhouse.client import get_client
client = get_client("chdb://" + sys.argv[1], int(sys.argv[2]))
print(client.query(
    "SELECT value FROM system.server_settings WHERE name = 'uncompressed_cache_size'"
).result_rows[0][0])
"""


@pytest.mark.parametrize("mb", [0, 8])
def test_embedded_engine_uses_configured_uncompressed_cache_size(tmp_path: Path, mb: int) -> None:
    # A fresh process: the engine is started once per process, so the first client decides.
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "ch"), str(mb)],
                         capture_output=True, text=True, timeout=120, check=True)
    assert int(out.stdout.strip().splitlines()[-1]) == mb * 1024 * 1024
