"""classify (clickhouse/errors.py): what a failed statement means for the consumer."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from clickhouse.errors import classify, error_code


def _engine(code: int, text: str) -> Exception:
    return Exception(f"HTTPDriver for http://localhost:8123 received ClickHouse error code {code}\n"
                     f" Code: {code}. DB::Exception: {text}. (X) (version 25.8.1.1)")


def test_too_many_partitions_for_one_insert_block_is_a_data_error():
    err = _engine(252, "Too many partitions for single INSERT block (more than 100). The limit is controlled by "
                       "'max_partitions_per_insert_block' setting")
    assert classify(err) == "data"


def test_too_many_parts_is_transient():
    assert classify(_engine(252, "Too many parts (3001 with average size of 10.00 KiB) in table 'db.events'. "
                                 "Merges are processing significantly slower than inserts")) == "transient"


@pytest.mark.parametrize(("code", "name"), [(516, "AUTHENTICATION_FAILED"), (497, "ACCESS_DENIED"),
                                            (60, "UNKNOWN_TABLE"), (81, "UNKNOWN_DATABASE")])
def test_refused_credentials_and_missing_tables_are_fatal(code, name):
    assert classify(_engine(code, name)) == "fatal"


@pytest.mark.parametrize(("code", "name"), [(53, "TYPE_MISMATCH"), (117, "INCORRECT_DATA"),
                                            (6, "CANNOT_PARSE_TEXT")])
def test_values_the_engine_cannot_take_are_data_errors(code, name):
    assert classify(_engine(code, name)) == "data"


@pytest.mark.parametrize("err", [
    ConnectionError("connection refused"),
    ConnectionResetError("reset by peer"),
    TimeoutError("timed out"),
    OperationalError("Error HTTPConnectionPool(host='localhost', port=8123): Read timed out. (read timeout=300)"),
    OSError("network is unreachable"),
])
def test_connection_failures_and_timeouts_are_transient(err):
    assert classify(err) == "transient"


def test_unknown_codes_are_transient():
    assert classify(_engine(99_999, "SOMETHING_NEW")) == "transient"
    assert classify(Exception("no code at all")) == "transient"


def test_error_code_is_parsed_from_the_message():
    assert error_code(Exception("Code: 252. DB::Exception: Too many parts")) == 252
    assert error_code(_engine(516, "AUTHENTICATION_FAILED")) == 516
    assert error_code(Exception("no code here")) is None


def test_error_code_prefers_the_exception_s_own_code():
    class WithCode(Exception):
        code = 60

    assert error_code(WithCode("Code: 1. something else")) == 60
    assert classify(WithCode("no text")) == "fatal"
