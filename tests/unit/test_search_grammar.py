"""The grammar of ``q`` (query_api/search.py): what parses to what, what is refused and why, and the SQL it becomes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from query_api.errors import InvalidFilter
from query_api.filters import EventFilters, parse_filters
from query_api.queries import build_where
from query_api.search import QUALIFIER_FIELDS, SEARCH_FIELDS, InvalidSearch, Search, SearchLimits, Term, parse_search
from schemas.catalog import load_catalog

LIMITS = SearchLimits(max_chars=256, max_terms=8)


def _terms(q: str) -> tuple[Term, ...]:
    search = parse_search(q, LIMITS)
    assert search is not None
    return search.terms


def test_words_are_anded_lower_cased_and_searched_in_every_field():
    assert _terms("INT_GitHub  Revoked") == (Term("int_github"), Term("revoked"))
    assert Term("x").fields == SEARCH_FIELDS


def test_a_quoted_phrase_keeps_its_spaces_and_a_minus_excludes():
    assert _terms('"Role Changed" -bot -"deploy bot"') == (
        Term("role changed"), Term("bot", exclude=True), Term("deploy bot", exclude=True))


def test_qualifiers_narrow_a_term_to_their_fields_and_take_phrases():
    terms = _terms('Actor:alex@ action:TOKEN target:"build #12" ip:10.0. request:req_ab -actor:bot')
    assert [(t.qualifier, t.value, t.exclude) for t in terms] == [
        ("actor", "alex@", False), ("action", "token", False), ("target", "build #12", False),
        ("ip", "10.0.", False), ("request", "req_ab", False), ("actor", "bot", True)]
    assert terms[0].fields == ("actor_id", "actor_display")
    assert terms[2].fields == ("target_kind", "target_id", "target_display")


def test_text_with_a_colon_that_is_not_a_word_before_it_is_plain_text():
    assert _terms("09:30 ::1 fe80::1") == (Term("09:30"), Term("::1"), Term("fe80::1"))
    assert _terms('"https://x.example"') == (Term("https://x.example"),)


def test_blank_means_no_search():
    assert parse_search("   \t ", LIMITS) is None
    assert parse_filters(load_catalog(), category=None, actor=None, target_kind=None, action=None, since=None,
                         until=None, q="  ").is_empty


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ('"role changed', "never closed"),
        ('ab"cd', "quote inside the word"),
        ('"ab"cd', "put a space after the phrase"),
        ('""', "is empty"),
        ('foo "  "', "is empty"),
        ("foo -", "excludes nothing"),
        ("actor:", "'actor:' has no value"),
        ("actor: alex", "'actor:' has no value"),
        ("user:alex", "unknown qualifier 'user:'; use one of actor:, action:, target:, ip:, request:"),
        ("https://x.example", 'quote the text to search for it \\("https://x.example"\\)'),
        ("-bot -admin", "only exclusions"),
        ("x" * 257, "257 characters long; search with at most 256"),
        (" ".join("abcdefghi"), "more than 8 terms"),
        ("a\x00b", "control characters"),
        ("a\nb", "line breaks"),
        ("a\u2028b", "line breaks"),
    ],
)
def test_bad_syntax_is_refused_naming_q_and_what_is_wrong(q, message):
    with pytest.raises(InvalidSearch, match=message) as err:
        parse_search(q, LIMITS)
    assert err.value.field == "q"
    assert err.value.message.startswith("q: ")
    assert isinstance(err.value, InvalidFilter)  # the API's 400 with code invalid_search


def test_the_limits_come_from_the_caller():
    with pytest.raises(InvalidSearch, match="at most 3"):
        parse_search("abcd", SearchLimits(max_chars=3, max_terms=8))
    with pytest.raises(InvalidSearch, match="more than 1 terms"):
        parse_search("a b", SearchLimits(max_chars=100, max_terms=1))


def test_a_term_matches_a_case_insensitive_substring_of_one_of_its_fields():
    row = {"action": "INTEGRATION_CONNECTED", "actor_display": "Alex@WS.example", "payload": '{"after":{"x":1}}'}
    assert Term("integration_conn").matches(row)
    assert Term("alex@ws").matches(row)
    assert Term('"x":1').matches(row)  # the payload's stored JSON text, keys and values
    assert not Term("alex", qualifier="action").matches(row)
    assert not Term("connected\nalex").matches(row)  # never across two fields
    search = Search((Term("alex"), Term("disconnected", exclude=True)))
    assert search.matches(row)
    assert not Search((Term("alex"), Term("connected", exclude=True))).matches(row)


# Values a user could type: letters, digits and the punctuation of ids, emails, IPs and JSON, spaces inside phrases.
_VALUE = st.text(alphabet=st.sampled_from("abcXYZ019_.@#/:-' é"), min_size=1, max_size=12).filter(
    lambda v: v.strip() != "")
_TERM = st.builds(Term, _VALUE.map(str.lower), st.sampled_from([None, *QUALIFIER_FIELDS]), st.booleans())
_SEARCH = st.lists(_TERM, min_size=1, max_size=8).filter(lambda ts: not all(t.exclude for t in ts)).map(
    lambda ts: Search(tuple(ts)))


@given(_SEARCH)
def test_the_canonical_text_parses_back_to_the_same_search(search):
    assert parse_search(str(search), SearchLimits(max_chars=10_000, max_terms=8)) == search


@given(st.text(alphabet=st.sampled_from('ab: -"xY@.'), max_size=30))
def test_any_text_either_parses_or_is_refused_with_invalid_search_and_parsing_is_idempotent(q):
    try:
        search = parse_search(q, LIMITS)
    except InvalidSearch:
        return
    if search is not None:
        assert parse_search(str(search), LIMITS) == search


@given(_SEARCH)
def test_every_value_reaches_the_engine_as_a_parameter_never_in_the_sql_text(search):
    query = build_where("ws_1", EventFilters(q=search))
    for n, term in enumerate(search.terms):
        pattern = query.parameters[f"q{n}"]
        assert pattern.startswith("%") and pattern.endswith("%")
        assert pattern[1:-1].replace("\\_", "_") == term.value  # the only LIKE wildcard these values hold
        assert f"{{q{n}:String}}" in query.where
    assert query.where.count("NOT (") == sum(t.exclude for t in search.terms)
    # The SQL text is the same for any values of the same shape: nothing of the values is in it.
    blank = Search(tuple(Term("v", t.qualifier, t.exclude) for t in search.terms))
    assert build_where("ws_1", EventFilters(q=blank)).where == query.where


def test_like_wildcards_in_a_term_are_literal():
    query = build_where("ws_1", EventFilters(q=Search((Term("50%_off\\"),))))
    assert query.parameters["q0"] == "%50\\%\\_off\\\\%"


def test_q_is_part_of_the_canonical_filters_and_round_trips():
    f = parse_filters(load_catalog(), category="members", actor=None, target_kind=None, action=None, since=None,
                      until=None, q='  Alex   -"Deploy Bot" ')
    assert f.canonical() == {"category": "members", "q": 'alex -"deploy bot"'}
    assert f.echo()["q"] == 'Alex   -"Deploy Bot"'
    assert EventFilters.from_canonical(f.canonical()) == f
    other = parse_filters(load_catalog(), category="members", actor=None, target_kind=None, action=None,
                          since=None, until=None, q="alex")
    assert other.canonical() != f.canonical()
