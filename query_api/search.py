"""The free-text search ``q``: its grammar, parsed once into terms, and the one meaning of a match.

Grammar (README, "Search" has the user's version)::

    q         := item ( whitespace item )*
    item      := [ "-" ] [ qualifier ":" ] value
    qualifier := actor | action | target | ip | request      (case-insensitive)
    value     := '"' any text but '"' '"'                    (a phrase: spaces kept)
               | a run of non-space characters without '"'

Meaning: every item must hold (AND); ``-`` negates one item. A value matches
an event when it is a **case-insensitive substring** of one of the searched
fields (not a whole-word match: ``git`` finds ``int_github``). A free value
searches every field in ``SEARCH_FIELDS``; a qualified one only its
qualifier's fields (``QUALIFIER_FIELDS``). A phrase is the same substring
test with its spaces kept, so ``"role changed"`` needs those two words
adjacent in one field. Fields are searched one by one, never across a field
boundary. The payload is searched as its stored JSON text (keys and values;
``"`` and ``\\`` as JSON escapes them).

Refused with ``InvalidSearch`` (a 400 naming ``q``): an unclosed quote, a
quote inside a word, an empty phrase, a lone ``-``, an empty qualifier
value (``actor:``), an unknown qualifier (``foo:bar``; quote it to search
the text), only exclusions, control characters, more than the settings'
length or term count. A word whose part before the first ``:`` is not
letters only (``09:30``, ``::1``) is plain text.

Case-insensitivity is the engine's ``lowerUTF8`` and Python's ``str.lower``
on both sides; they agree for the letters this product stores (the
property tests check it); exotic one-to-many case mappings (``İ``) are not
promised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from query_api.errors import InvalidFilter

# What free text searches, by column, in this order; the SQL expression of the index
# (clickhouse/events.py: SEARCH_TEXT) joins the same columns.
SEARCH_FIELDS: tuple[str, ...] = (
    "action", "actor_id", "actor_display", "target_kind", "target_id", "target_display", "payload",
    "request_id", "ip", "user_agent",
)
QUALIFIER_FIELDS: dict[str, tuple[str, ...]] = {
    "actor": ("actor_id", "actor_display"),
    "action": ("action",),
    "target": ("target_kind", "target_id", "target_display"),
    "ip": ("ip",),
    "request": ("request_id",),
}
_QUALIFIER_LIST = ", ".join(f"{k}:" for k in QUALIFIER_FIELDS)
_QUALIFIER = re.compile(r"^(?P<name>[A-Za-z]+):(?P<rest>.*)$", re.DOTALL)
_LINE_BREAKS = frozenset("\x85\u2028\u2029")
_PLAIN = re.compile(r"^[^\s\"]+$")


class InvalidSearch(InvalidFilter):
    """A ``q`` that does not follow the grammar; the message says where and how to fix it."""

    code = "invalid_search"

    def __init__(self, message: str) -> None:
        super().__init__(f"q: {message}", "q")


@dataclass(frozen=True)
class SearchLimits:
    """How long a search may be (characters) and how many terms it may hold (settings: api.search_*)."""

    max_chars: int
    max_terms: int


@dataclass(frozen=True)
class Term:
    """One item of a search: ``value`` lower-cased, searched in ``fields``; ``exclude`` negates it."""

    value: str
    qualifier: str | None = None
    exclude: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        return QUALIFIER_FIELDS[self.qualifier] if self.qualifier else SEARCH_FIELDS

    def text(self) -> str:
        """The term in canonical q syntax: quoted unless it reads back the same bare (no quote can occur in it)."""
        bare = _PLAIN.match(self.value) and ":" not in self.value and not self.value.startswith("-")
        value = self.value if bare else f'"{self.value}"'
        return f"{'-' if self.exclude else ''}{self.qualifier + ':' if self.qualifier else ''}{value}"

    def matches(self, row: dict[str, str]) -> bool:
        """Whether ``row`` (column -> stored text) holds the value in one of the term's fields, before negation."""
        return any(self.value in str(row.get(f, "")).lower() for f in self.fields)


@dataclass(frozen=True)
class Search:
    """A parsed ``q``: terms that must all hold. ``str()`` is its canonical text (what cursors compare)."""

    terms: tuple[Term, ...]

    def __str__(self) -> str:
        return " ".join(t.text() for t in self.terms)

    def matches(self, row: dict[str, str]) -> bool:
        """The grammar's meaning in Python: the reference the property tests hold the engine to."""
        return all(t.matches(row) != t.exclude for t in self.terms)

    @property
    def highlights(self) -> tuple[Term, ...]:
        """The terms a page marks in its rows: the ones that must be present (an excluded one never is)."""
        return tuple(t for t in self.terms if not t.exclude)


def _read_value(q: str, i: int, start: int) -> tuple[str, int]:
    """The value beginning at ``q[i]`` and the index after it; ``start`` is where the item began (for messages)."""
    if i < len(q) and q[i] == '"':
        end = q.find('"', i + 1)
        if end < 0:
            raise InvalidSearch(f"the quote at position {i + 1} is never closed; add a closing \".")
        if end + 1 < len(q) and not q[end + 1].isspace():
            raise InvalidSearch(f"put a space after the phrase that ends at position {end + 1}.")
        return q[i + 1:end], end + 1
    j = i
    while j < len(q) and not q[j].isspace():
        if q[j] == '"':
            raise InvalidSearch(
                f"a quote inside the word at position {start + 1}; quote the whole phrase (\"like this\")."
            )
        j += 1
    return q[i:j], j


def parse_search(raw: str, limits: SearchLimits) -> Search | None:
    """The terms of ``raw`` (None for blank); raises InvalidSearch saying what is wrong."""
    if len(raw) > limits.max_chars:
        raise InvalidSearch(f"is {len(raw)} characters long; search with at most {limits.max_chars}.")
    if any(ord(ch) < 32 or ord(ch) == 127 or ch in _LINE_BREAKS for ch in raw.replace("\t", " ")):
        raise InvalidSearch("contains control characters or line breaks; search with plain text.")
    terms: list[Term] = []
    i = 0
    while i < len(raw):
        if raw[i].isspace():
            i += 1
            continue
        start = i
        exclude = raw[i] == "-"
        if exclude:
            i += 1
            if i >= len(raw) or raw[i].isspace():
                raise InvalidSearch(f"'-' at position {start + 1} excludes nothing; write -word or -\"a phrase\".")
        qualifier = None
        if raw[i] != '"':
            word_end = i
            while word_end < len(raw) and not raw[word_end].isspace():
                word_end += 1
            match = _QUALIFIER.match(raw[i:word_end])
            if match:
                name = match["name"].lower()
                if name not in QUALIFIER_FIELDS:
                    raise InvalidSearch(
                        f"unknown qualifier '{match['name']}:'; use one of {_QUALIFIER_LIST}"
                        f", or quote the text to search for it (\"{raw[i:word_end]}\")."
                    )
                qualifier = name
                i += len(match["name"]) + 1
                if i >= len(raw) or raw[i].isspace():
                    raise InvalidSearch(f"'{name}:' has no value; write {name}:something or {name}:\"a phrase\".")
        value, i = _read_value(raw, i, start)
        if not value.strip():
            raise InvalidSearch(f"the phrase at position {start + 1} is empty; put text between the quotes.")
        terms.append(Term(value.lower(), qualifier, exclude))
        if len(terms) > limits.max_terms:
            raise InvalidSearch(f"has more than {limits.max_terms} terms; narrow it with filters instead.")
    if not terms:
        return None
    if all(t.exclude for t in terms):
        raise InvalidSearch("has only exclusions (-term); add at least one term to look for.")
    return Search(tuple(terms))
