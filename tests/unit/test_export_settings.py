"""The Parquet row group setting is read from its variable and refused at start when out of range."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from config.settings import PARQUET_ROW_GROUP_ROWS_RANGE, Settings

VARIABLE = "AUDITLOG_API__EXPORT_PARQUET_ROW_GROUP_ROWS"
LOW, HIGH = PARQUET_ROW_GROUP_ROWS_RANGE


def test_the_variable_sets_the_row_group_size(monkeypatch):
    monkeypatch.setenv(VARIABLE, "5000")
    assert Settings().api.export_parquet_row_group_rows == 5_000


@given(rows=st.integers(min_value=LOW, max_value=HIGH))
def test_every_size_in_range_is_taken(rows):
    settings = Settings.model_validate({"api": {"export_parquet_row_group_rows": rows}})
    assert settings.api.export_parquet_row_group_rows == rows


@given(rows=st.one_of(st.integers(max_value=LOW - 1), st.integers(min_value=HIGH + 1)))
def test_a_size_out_of_range_is_refused_naming_the_variable_and_the_range(rows):
    with pytest.raises(ValidationError, match=f"{VARIABLE} must be between {LOW:,} and {HIGH:,} rows"):
        Settings.model_validate({"api": {"export_parquet_row_group_rows": rows}})


@pytest.mark.parametrize("value", ["0", "-5", "999", "10001", "10k", "1e9", "many"])
def test_a_bad_value_in_the_environment_stops_the_settings_from_loading(monkeypatch, value):
    monkeypatch.setenv(VARIABLE, value)
    with pytest.raises(ValidationError, match="export_parquet_row_group_rows"):
        Settings()
