"""The event contract as one SQL expression: why a staged record is refused, or ''.

Every decode path of the consumer stages records in the engine and asks this
expression, so one rule set decides what is stored and what is dead-lettered,
with the reason. The limits come from ``schemas/contract.py`` and the catalog,
bound as query parameters (``RULE_PARAMETERS``), never formatted into SQL. The
producer checks the same contract in Python (``schemas.event.validate_record``);
``tests/integration/ingestion/test_contract_agreement.py`` holds both to the same verdicts.

The first rule that fails names the reason, in the order ``validate_record``
checks, each prefixed with the exception name the producer would raise.
"""

from __future__ import annotations

from typing import Any

from schemas.catalog import Catalog
from schemas.contract import (
    ACTOR_KINDS,
    OCCURRED_AT_END_MICROS,
    OCCURRED_AT_MIN_MICROS,
    UUID_PATTERN,
    WORKSPACE_ID_PATTERN,
)

# Python's str.isspace() characters, so "blank" in SQL means what .strip() == "" means in Python.
# An RE2 pattern, bound as a parameter so that no SQL string-literal escaping touches it.
BLANK_PATTERN = (
    r"^[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*$"
)


def _blank(expr: str) -> str:
    return f"match({expr}, {{blank:String}})"


def _map_utf8(expr: str) -> str:
    return (
        f"arrayAll(k -> isValidUTF8(k), mapKeys({expr})) AND arrayAll(v -> "
        "isValidUTF8(ifNull(variantElement(v, 'String'), '')) AND "
        f"arrayAll(s -> isValidUTF8(s), variantElement(v, 'Array(String)')), mapValues({expr}))"
    )


def _map_finite(expr: str) -> str:
    return f"arrayAll(v -> isFinite(ifNull(variantElement(v, 'Float64'), 0.)), mapValues({expr}))"


_UTF8_FIELDS = (
    "id", "workspace_id", "action", "category", "actor.kind", "actor.id", "actor.display",
    "target.kind", "target.id", "target.display",
)
_CONTEXT_FIELDS = ("ip", "user_agent", "request_id", "service")

_RULES: list[tuple[str, str]] = [
    *[(f"NOT isValidUTF8({f})", f"'InvalidEvent: {f} is not valid UTF-8'") for f in _UTF8_FIELDS],
    *[(f"NOT isValidUTF8(ifNull(context.{f}, ''))", f"'InvalidEvent: context.{f} is not valid UTF-8'")
      for f in _CONTEXT_FIELDS],
    *[(f"NOT ({_map_utf8(f'payload.{side}')})", f"'InvalidEvent: payload.{side} holds text that is not valid UTF-8'")
      for side in ("before", "after")],
    (_blank("workspace_id"), "'InvalidEvent: workspace_id is empty: every event belongs to one workspace'"),
    ("NOT match(workspace_id, {workspace_pattern:String})",
     "concat('InvalidEvent: workspace_id ', substring(workspace_id, 1, 140),"
     " ' is not 1-128 characters of letters, digits, _ . : or -')"),
    ("transform(action, {names:Array(String)}, {categories:Array(String)}, '') = ''",
     "concat('UnknownAction: unknown action ', substring(action, 1, 140))"),
    ("transform(action, {names:Array(String)}, {categories:Array(String)}, '') != category",
     "concat('InvalidEvent: category ', category, ' does not match the catalog for ', action)"),
    (f"{_blank('actor.id')} OR {_blank('actor.display')}",
     "'InvalidEvent: actor is missing or empty: an audit event must say who acted (id and display)'"),
    ("actor.kind NOT IN {actor_kinds:Array(String)}",
     "concat('InvalidEvent: actor.kind must be one of the actor kinds, got ', actor.kind)"),
    ("transform(action, {names:Array(String)}, {kinds:Array(String)}, '') != target.kind",
     "concat('InvalidEvent: target.kind ', target.kind, ' does not match the catalog for ', action)"),
    (_blank("target.id"), "'InvalidEvent: target.id is empty: say what the action was done to'"),
    ("occurred_at < {min_micros:Int64} OR occurred_at >= {end_micros:Int64}",
     "'InvalidEvent: occurred_at is outside the accepted range [1900-01-01, 2300-01-01) UTC'"),
    ("NOT match(id, {uuid_pattern:String})", "'InvalidEvent: id is not a canonical UUID'"),
    *[(f"has(mapKeys(payload.{side}), '')", f"'InvalidEvent: payload.{side} has an empty key'")
      for side in ("before", "after")],
    *[(f"NOT ({_map_finite(f'payload.{side}')})",
       f"'InvalidEvent: payload.{side} holds NaN or an infinity, which have no JSON form'")
      for side in ("before", "after")],
]

REJECTION_REASON = "multiIf(" + ", ".join(f"{cond}, {reason}" for cond, reason in _RULES) + ", '')"


def rule_parameters(catalog: Catalog) -> dict[str, Any]:
    """The values ``REJECTION_REASON`` binds: the catalog and the contract's limits."""
    names = list(catalog.actions)
    return {
        "names": names,
        "categories": [catalog.actions[n].category for n in names],
        "kinds": [catalog.actions[n].target_kind for n in names],
        "actor_kinds": sorted(ACTOR_KINDS),
        "blank": BLANK_PATTERN,
        "workspace_pattern": WORKSPACE_ID_PATTERN,
        "uuid_pattern": UUID_PATTERN,
        "min_micros": OCCURRED_AT_MIN_MICROS,
        "end_micros": OCCURRED_AT_END_MICROS,
    }
