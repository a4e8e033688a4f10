"""The SQL gateway's composition rules and credentials, without starting an engine."""

from __future__ import annotations

import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditlog.sql_gateway import CredentialsFileError, build_sql_gateway, load_or_create_credentials
from clickhouse.readonly_engine import EngineLimits, is_client_deadline
from config.settings import Settings, SqlGatewaySettings


@pytest.mark.parametrize(("port", "dsn"), [(0, "chdb:///tmp/x"), (8123, "http://default:x@127.0.0.1:1")])
def test_no_gateway_when_it_is_off_or_the_engine_is_a_server(tmp_path, port, dsn):
    settings = Settings.model_validate({"clickhouse": {"dsn": dsn},
                                        "sql_gateway": {"port": port, "credentials_file": str(tmp_path / "c")}})
    assert build_sql_gateway(settings) is None
    assert not (tmp_path / "c").exists()


def test_defaults_are_loopback_on_clickhouses_port():
    config = Settings().sql_gateway
    assert (config.host, config.port, config.user, config.password) == ("127.0.0.1", 8123, "analyst", "")


def test_credentials_are_generated_once_kept_private_and_configurable(tmp_path):
    path = tmp_path / "var" / "creds.json"
    first = load_or_create_credentials(SqlGatewaySettings(credentials_file=path))
    assert len(first.password) >= 24 and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    again = load_or_create_credentials(SqlGatewaySettings(credentials_file=path))
    assert again == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    given = load_or_create_credentials(SqlGatewaySettings(user="bi", password="from-env", credentials_file=path))
    assert (given.user, given.password) == ("bi", "from-env")
    assert given.matches("bi", "from-env") and not given.matches("bi", "from-env!")


def test_a_damaged_credentials_file_is_reported_not_replaced(tmp_path):
    path = tmp_path / "creds.json"
    path.write_text("not json")
    with pytest.raises(CredentialsFileError, match="remove it"):
        load_or_create_credentials(SqlGatewaySettings(credentials_file=path))
    assert path.read_text() == "not json"


def test_limits_go_before_readonly_so_no_query_can_raise_them():
    statements = EngineLimits().statements()
    assert statements[-1] == "SET readonly = 1"
    assert any(s.startswith("SET max_result_rows") for s in statements[:-1])
    assert "SET result_overflow_mode = 'throw'" in statements


@given(st.floats(min_value=1e-3, max_value=1e12, allow_nan=False))
def test_any_positive_number_of_seconds_is_a_client_deadline(seconds):
    assert is_client_deadline(repr(seconds)) and is_client_deadline(str(int(seconds) + 1))


@given(st.one_of(st.floats(max_value=0), st.just(float("inf")), st.just(float("nan")), st.just(float("-inf"))))
def test_zero_negative_and_unbounded_are_not_a_deadline(seconds):
    assert not is_client_deadline(str(seconds))


@given(st.text().filter(lambda t: not _parses_as_float(t)))
def test_text_that_is_no_number_is_not_a_deadline(text):
    assert not is_client_deadline(text)


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
