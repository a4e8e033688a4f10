"""Starting the data teams' SQL gateway in the embedded run mode (``auditlog up``).

The gateway's credentials are generated on first start and kept under ``var/``
(mode 0600), so an analyst's saved connection keeps working across restarts; the
banner prints them next to the API tokens. They are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

from clickhouse.client import engine_connection_string
from clickhouse.http_gateway import GatewayCredentials, SqlGateway
from clickhouse.readonly_engine import EngineLimits, ReadOnlyEngine
from config.settings import Settings, SqlGatewaySettings

logger = logging.getLogger(__name__)


class CredentialsFileError(Exception):
    """The gateway's credentials file exists but cannot be read as credentials."""


def load_or_create_credentials(config: SqlGatewaySettings) -> GatewayCredentials:
    """The configured password, else the one stored on first start, else a new one (stored, 0600).

    Raises:
        CredentialsFileError: the file exists and is not the JSON this function writes.
    """
    if config.password:
        return GatewayCredentials(config.user, config.password)
    path = Path(config.credentials_file)
    if path.exists():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
            logger.warning("sql_gateway_credentials_permissions_fixed path=%s mode=0600", path)
        try:
            stored = json.loads(path.read_text())
            return GatewayCredentials(config.user, str(stored["password"]))
        except (ValueError, KeyError, TypeError) as err:
            raise CredentialsFileError(f"{path} is not a SQL gateway credentials file ({err}); remove it to "
                                       f"generate new credentials") from err
    credentials = GatewayCredentials.generate(config.user)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"user": credentials.user, "password": credentials.password}, out)
    logger.info("sql_gateway_credentials_created path=%s", path)
    return credentials


def build_sql_gateway(settings: Settings) -> SqlGateway | None:
    """The gateway over the embedded engine, not yet started; None when it is off or there is no embedded engine.

    Call after the product opened its engine (``get_client``): the gateway opens more handles on it.
    """
    config = settings.sql_gateway
    ch = settings.clickhouse
    if config.port == 0:
        return None
    if not ch.dsn.startswith("chdb://"):
        logger.info("sql_gateway_not_started reason=server_dsn (use the read-only role in clickhouse/access/)")
        return None
    limits = EngineLimits(max_execution_seconds=config.max_execution_seconds, max_result_rows=config.max_result_rows,
                          max_result_bytes=config.max_result_bytes, max_memory_usage=config.max_memory_mb * 1024 * 1024,
                          max_threads=config.max_threads)
    engine = ReadOnlyEngine(engine_connection_string(ch.dsn, ch.uncompressed_cache_mb), ch.database, limits,
                            handles=config.concurrent_queries)
    return SqlGateway(engine, load_or_create_credentials(config), host=config.host, port=config.port)


def banner_lines(gateway: SqlGateway, settings: Settings) -> list[str]:
    """What ``auditlog up`` prints about the gateway: where, who, and one command to try."""
    creds = gateway.credentials
    host, port = gateway.address
    return [
        f"  SQL (read-only ClickHouse over HTTP): http://{host}:{port}  user {creds.user}  password {creds.password}",
        f'    clickhouse_connect.get_client(dsn="http://{creds.user}:{creds.password}@{host}:{port}")',
        f"    curl -u {creds.user}:{creds.password} http://{host}:{port}/ --data-binary "
        f"'SELECT action, count() FROM {settings.events_table} GROUP BY action ORDER BY 2 DESC LIMIT 5'",
    ]
