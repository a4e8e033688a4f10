"""``auditlog up`` starts the SQL gateway on its engine, prints how to reach it, and stops it.

The real composition (``run_embedded``: migrations, consumer, producer, gateway) runs
against the test broker and engine; only the API server's blocking ``run()`` is
replaced by a client session against the gateway, as an analyst would open one
while the product runs.
"""

from __future__ import annotations

import json
import socket
import stat

import clickhouse_connect
import httpx
import pytest
import uvicorn

from auditlog.embedded import run_embedded
from config.settings import Settings, SqlGatewaySettings

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_serves_sql_while_it_runs_and_prints_the_credentials(settings: Settings, tmp_path, monkeypatch, capsys):
    port = _free_port()
    creds_file = tmp_path / "var" / "sql-gateway-credentials.json"
    settings = settings.model_copy(update={
        "sql_gateway": SqlGatewaySettings(port=port, credentials_file=creds_file),
        "api": settings.api.model_copy(update={"port": _free_port()}),
    })
    seen: dict[str, object] = {}

    def analyst_session(_server: object) -> None:
        password = json.loads(creds_file.read_text())["password"]
        client = clickhouse_connect.get_client(dsn=f"http://analyst:{password}@127.0.0.1:{port}")
        seen["tables"] = client.query(f"SHOW TABLES FROM {settings.clickhouse.database}").result_rows
        seen["count"] = client.command(f"SELECT count() FROM {settings.events_table}")
        seen["password"] = password

    monkeypatch.setattr(uvicorn.Server, "run", analyst_session)  # the class auditlog.embedded runs
    assert run_embedded(settings, start_kafka=False, seed=False) == 0

    assert ("events",) in seen["tables"]  # type: ignore[operator]
    assert seen["count"] == 0
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    banner = capsys.readouterr().out
    assert f"http://127.0.0.1:{port}" in banner and f"password {seen['password']}" in banner
    with pytest.raises(httpx.ConnectError):  # stopped with the product
        httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2)
