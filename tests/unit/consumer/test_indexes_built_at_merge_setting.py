"""``consumer.indexes_built_at_merge``: index names only, from the environment as a JSON list."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from config.settings import ConsumerSettings, Settings, SettingsUnreadable, get_settings


def test_the_search_index_is_left_to_merges_by_default():
    assert Settings().consumer.indexes_built_at_merge == ("idx_search",)


def test_the_environment_sets_it_as_a_json_list(monkeypatch):
    monkeypatch.setenv("AUDITLOG_CONSUMER__INDEXES_BUILT_AT_MERGE", "[]")
    assert Settings().consumer.indexes_built_at_merge == ()
    monkeypatch.setenv("AUDITLOG_CONSUMER__INDEXES_BUILT_AT_MERGE", '["idx_search", "idx_actor_ngrams"]')
    assert Settings().consumer.indexes_built_at_merge == ("idx_search", "idx_actor_ngrams")


@pytest.mark.parametrize("name", ["", "1idx", "idx search", "idx_search, idx_x", "idx'; DROP TABLE x", "idx`"])
def test_a_value_that_is_not_an_index_name_is_refused_at_start(name):
    with pytest.raises(ValidationError, match="not an index name"):
        ConsumerSettings(indexes_built_at_merge=(name,))


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,40}", fullmatch=True))
def test_every_identifier_is_accepted(name):
    assert ConsumerSettings(indexes_built_at_merge=(name,)).indexes_built_at_merge == (name,)


def test_a_value_that_is_not_json_names_the_variable_and_the_form(monkeypatch):
    monkeypatch.setenv("AUDITLOG_CONSUMER__INDEXES_BUILT_AT_MERGE", "idx_search")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsUnreadable, match="AUDITLOG_CONSUMER__INDEXES_BUILT_AT_MERGE") as raised:
            get_settings()
        assert "takes JSON" in str(raised.value) and "JSONDecodeError" in str(raised.value)
    finally:
        get_settings.cache_clear()
