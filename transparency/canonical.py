"""The leaf bytes of an event: RFC 8785 (JCS) canonical JSON of the event as the export returns it.

Why this shape: a customer's auditor holds only the JSONL export (or the
API's JSON). Each line must be enough to recompute its leaf, whatever
spelling the engine chose for it (``1`` or ``1.0``, ``\\u00e9`` or ``é``,
key order, ``…000000Z`` or ``…Z``). JCS fixes one spelling for every JSON
value, and off-the-shelf JCS libraries exist in most languages.

What a leaf covers (leaf format ``v1``), exactly the keys of an export line:
``id``, ``workspace_id``, ``occurred_at``, ``action``, ``category``,
``actor{kind,id,display}``, ``target{kind,id,display}``,
``payload{before,after}``, ``context{ip,user_agent,request_id,service}``.

What it leaves out (server-only fields): anything the server adds at ingest
and never exports — today ``ingested_at`` and ``schema_version`` (the Avro
writer version, a property of the wire encoding, not of the event). A key an
export line carries beyond the list above is not covered by the leaf; the
verifier says so rather than silently trusting it.

Normalisation before JCS, so the API's JSON and the export give the same bytes:
``id`` as a lowercase hyphenated UUID; ``occurred_at`` as
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, always six fractional digits);
``payload.before`` / ``payload.after`` present (``null`` when absent).

Numbers follow JCS: each is an IEEE-754 double printed as ECMAScript's
``Number.prototype.toString`` prints it. So integers beyond ±2^53 are
compared at double precision (I-JSON, RFC 7493): the producer refuses
nothing there, so an edit below a double's precision in such an integer is
not detected — documented in docs/verification.md.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

import orjson

from transparency.errors import InvalidCanonicalForm

LEAF_FORMAT = "v1"
_SAFE = 2**53
# The keys a leaf covers, per nested object (None: a scalar).
EVENT_KEYS = ("id", "workspace_id", "occurred_at", "action", "category", "actor", "target", "payload", "context")
PARTY_KEYS = ("kind", "id", "display")
CONTEXT_KEYS = ("ip", "user_agent", "request_id", "service")
# Fields the server adds at ingest; stored, never exported, never in a leaf.
SERVER_ONLY_FIELDS = ("ingested_at", "schema_version")



def number_to_string(value: float | int) -> str:
    """ECMAScript Number::toString of ``value`` as a double (RFC 8785 §3.2.2.3).

    Raises:
        InvalidCanonicalForm: NaN or an infinity (JSON has neither).
    """
    try:
        x = float(value)
    except OverflowError as err:  # an integer beyond a double's range (10**400): no JSON number JCS can write
        raise InvalidCanonicalForm(f"{value!r} is beyond the range of a double") from err
    if math.isnan(x) or math.isinf(x):
        raise InvalidCanonicalForm(f"{value!r} is not a JSON number")
    if x == 0:
        return "0"  # also -0
    sign = "-" if x < 0 else ""
    r = repr(abs(x))  # shortest digits that round-trip: the same digits ECMAScript picks
    mantissa, _, exp_text = r.partition("e")
    exp = int(exp_text) if exp_text else 0
    int_part, _, frac = mantissa.partition(".")
    if int_part == "0":
        zeros = len(frac) - len(frac.lstrip("0"))
        digits = frac[zeros:]
        n = exp - zeros
    else:
        digits = int_part + frac
        n = len(int_part) + exp
        stripped = digits.lstrip("0")
        n -= len(digits) - len(stripped)
        digits = stripped
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        e_text = f"e+{e}" if e >= 0 else f"e-{-e}"
        out = digits + e_text if k == 1 else digits[0] + "." + digits[1:] + e_text
    return sign + out


# JSON string escaping exactly as RFC 8785 §3.2.2.2 wants it (", \\, \b \f \n \r \t, other controls as
# lowercase \u00xx, everything else as itself): json's encoder without ensure_ascii does precisely that
# (CPython's C accelerator when present; its pure-Python fallback escapes alike).
_string: Callable[[str], str] = encode_basestring


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def _sorted_keys(value: dict[Any, Any]) -> list[Any]:
    """Member names in UTF-16 code unit order (RFC 8785 §3.2.3).

    Code point order is the same unless a name holds a character above U+D7FF
    (where surrogate pairs sort below U+E000..U+FFFF), so the cheaper sort
    serves every other object.
    """
    keys = list(value)
    for key in keys:
        if not isinstance(key, str):
            raise InvalidCanonicalForm(f"object key {key!r} is not a string")
        if key > "\ud7ff":
            return sorted(keys, key=_utf16_key)
    keys.sort()
    return keys


def _serialise(value: Any, out: list[str]) -> None:
    kind = type(value)
    if kind is str:
        out.append(_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int and -_SAFE <= value <= _SAFE:
        out.append(str(value))  # what ECMAScript prints for every integer a double holds exactly
    elif isinstance(value, int | float):
        out.append(number_to_string(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(_sorted_keys(value)):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _serialise(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _serialise(item, out)
        out.append("]")
    else:
        raise InvalidCanonicalForm(f"{type(value).__name__} is not a JSON value")


def jcs(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a parsed JSON value, as UTF-8 bytes."""
    out: list[str] = []
    _serialise(value, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate: not a Unicode string JCS can carry
        raise InvalidCanonicalForm(f"a string holds a lone surrogate: {err}") from err


def format_time(moment: datetime) -> str:
    """``occurred_at`` in leaf form: UTC, microseconds, ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError as err:
            raise InvalidCanonicalForm(f"occurred_at {value!r} is not an ISO 8601 time") from err
        if parsed.tzinfo is None:
            raise InvalidCanonicalForm(f"occurred_at {value!r} has no time zone")
        return format_time(parsed)
    raise InvalidCanonicalForm(f"occurred_at {value!r} is not a time")


def _party(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidCanonicalForm(f"{name} is not an object")
    try:
        return {k: value[k] for k in PARTY_KEYS}
    except KeyError as err:
        raise InvalidCanonicalForm(f"{name} has no {err.args[0]!r}") from err


def leaf_object(event: dict[str, Any]) -> dict[str, Any]:
    """The normalised object a leaf is the JCS of (see the module docstring).

    Raises:
        InvalidCanonicalForm: a covered key is missing or has the wrong type.
    """
    try:
        payload = event["payload"]
        context = event["context"]
        event_id = str(uuid.UUID(str(event["id"])))
        body = {
            "id": event_id,
            "workspace_id": event["workspace_id"],
            "occurred_at": _time(event["occurred_at"]),
            "action": event["action"],
            "category": event["category"],
            "actor": _party(event["actor"], "actor"),
            "target": _party(event["target"], "target"),
        }
    except KeyError as err:
        raise InvalidCanonicalForm(f"the event has no {err.args[0]!r}") from err
    except ValueError as err:
        raise InvalidCanonicalForm(f"id {event.get('id')!r} is not a UUID") from err
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise InvalidCanonicalForm("payload is not an object")
    body["payload"] = {**payload, "before": payload.get("before"), "after": payload.get("after")}
    if not isinstance(context, dict):
        raise InvalidCanonicalForm("context is not an object")
    body["context"] = {k: context.get(k, "") for k in CONTEXT_KEYS}
    return body


def leaf_bytes(event: dict[str, Any]) -> bytes:
    """The bytes an event's leaf hashes: JCS of ``leaf_object(event)``.

    The fixed part of the object is written from a template whose members are
    already in JCS order (the sequencer and the verifier run this for every
    event; a test checks it equals ``jcs(leaf_object(event))``); only the
    payload goes through the generic serialiser.
    """
    obj = leaf_object(event)
    actor, target, context = obj["actor"], obj["target"], obj["context"]
    scalars = (obj["action"], obj["category"], obj["workspace_id"], *actor.values(), *target.values(),
               *context.values())
    if not all(type(v) is str for v in scalars):
        return jcs(obj)  # an odd line (a number where a name belongs): the generic path spells it
    return _template(obj["id"], obj["workspace_id"], obj["occurred_at"], obj["action"], obj["category"],
                     actor["kind"], actor["id"], actor["display"], target["kind"], target["id"], target["display"],
                     obj["payload"], context["ip"], context["user_agent"], context["request_id"], context["service"])


def _simple(value: Any) -> bool:
    """Whether orjson's sorted output of ``value`` is already its JCS form.

    True for what producers send: strings, null, booleans, integers a double
    holds exactly, lists and objects of those, member names below U+D800 (where
    code point order is UTF-16 order). Floats are not (orjson writes ``1.0``,
    JCS ``1``); they take the generic path.
    """
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return bool(-_SAFE <= value <= _SAFE)
    if kind is dict:
        return all(type(k) is str and k <= "\ud7ff" and _simple(v) for k, v in value.items())
    if kind is list:
        return all(_simple(v) for v in value)
    return False


def _payload_text(payload: Any) -> str:
    if _simple(payload):
        try:
            return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError as err:  # a lone surrogate, refused like the generic path refuses it
            raise InvalidCanonicalForm(f"a string holds a lone surrogate: {err}") from err
    out: list[str] = []
    _serialise(payload, out)
    return "".join(out)


def _template(event_id: str, workspace_id: str, occurred_at: str, action: str, category: str,
              actor_kind: str, actor_id: str, actor_display: str, target_kind: str, target_id: str,
              target_display: str, payload: Any, ip: str, user_agent: str, request_id: str, service: str) -> bytes:
    """The leaf bytes from normalised parts, members in JCS order (every scalar a str)."""
    s = _string
    text = (
        f'{{"action":{s(action)},'
        f'"actor":{{"display":{s(actor_display)},"id":{s(actor_id)},"kind":{s(actor_kind)}}},'
        f'"category":{s(category)},'
        f'"context":{{"ip":{s(ip)},"request_id":{s(request_id)},"service":{s(service)},'
        f'"user_agent":{s(user_agent)}}},'
        f'"id":{s(event_id)},"occurred_at":{s(occurred_at)},"payload":{_payload_text(payload)},'
        f'"target":{{"display":{s(target_display)},"id":{s(target_id)},"kind":{s(target_kind)}}},'
        f'"workspace_id":{s(workspace_id)}}}'
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidCanonicalForm(f"a string holds a lone surrogate: {err}") from err


def row_leaf_bytes(row: Sequence[Any], workspace_id: str) -> bytes:
    """Leaf bytes straight from an events-table row in ``clickhouse.events.SELECT_COLUMNS`` order.

    The sequencer and ``verify --workspace`` run this for every event: it skips
    building the API's dict and the normalised one (a test checks it equals
    ``leaf_bytes(row_to_event(row))``).
    """
    (event_id, occurred_at, action, category, actor_kind, actor_id, actor_display, target_kind, target_id,
     target_display, payload_text, ip, user_agent, request_id, service) = row[:15]
    payload = orjson.loads(payload_text) if payload_text else {}
    if not isinstance(payload, dict):
        raise InvalidCanonicalForm("payload is not an object")
    payload = {**payload, "before": payload.get("before"), "after": payload.get("after")}
    return _template(str(event_id).lower(), workspace_id, format_time(occurred_at), action, category, actor_kind,
                     actor_id, actor_display, target_kind, target_id, target_display, payload, ip, user_agent,
                     request_id, service)


def uncovered_keys(event: dict[str, Any]) -> list[str]:
    """Keys of an export line that its leaf does not cover (reported by the verifier, never trusted)."""
    extra = [k for k in event if k not in EVENT_KEYS]
    for name, keys in (("actor", PARTY_KEYS), ("target", PARTY_KEYS), ("context", CONTEXT_KEYS)):
        part = event.get(name)
        if isinstance(part, dict):
            extra += [f"{name}.{k}" for k in part if k not in keys]
    return extra


# --- the same leaf, computed by the engine ---------------------------------------------------------
# The sequencer hashes every stored event; doing it in Python cost ~6 µs an event plus reading all 15
# columns into Python objects (~60% of a round). For the events whose every string needs no JSON escape
# and whose payload is the compact ``{"before":…,"after":…}`` of plain values — what producers send — the
# engine writes the very bytes ``row_leaf_bytes`` writes and hashes them (SHA-256 over 0x00 || bytes);
# every other event is still hashed in Python. tests/integration/test_transparency_engine_leaf.py holds the
# two byte-identical on random events (hypothesis) against the real engine.

# Regular expressions (re2, as SQL string literals: every backslash doubled). A character JCS (and
# ``_string``) escapes: ", \ and the C0 controls.
_NEEDS_ESCAPE = r"[\\x00-\\x1f\"\\\\]"
_PLAIN_STRING = r"\"[^\"\\\\\\x00-\\x1f]*\""
# A payload value whose stored text is already its JCS text: null, booleans, integers of at most 15
# digits (exact as doubles, printed as themselves), strings and string arrays with nothing to escape.
_PLAIN_VALUE = (rf"(?:null|true|false|0|-?[1-9][0-9]{{0,14}}|{_PLAIN_STRING}"
                rf"|\\[(?:{_PLAIN_STRING}(?:,{_PLAIN_STRING})*)?\\])")
# A member: its name printable ASCII but " and \ (byte order is then RFC 8785's UTF-16 order).
_PLAIN_MEMBER = rf"\"[ !#-\\[\\]-~]*\":{_PLAIN_VALUE}"
_PLAIN_SIDE = rf"(null|\\{{(?:{_PLAIN_MEMBER}(?:,{_PLAIN_MEMBER})*)?\\}})"
# The compact payload the consumer's mapping (and record_to_row) writes, every value plain.
_PLAIN_PAYLOAD = rf"^\\{{\"before\":{_PLAIN_SIDE},\"after\":{_PLAIN_SIDE}\\}}$"
_LEAF_STRINGS = ("workspace_id", "toString(action)", "toString(category)", "toString(actor_kind)", "actor_id",
                 "actor_display", "toString(target_kind)", "target_id", "target_display", "ip", "user_agent",
                 "request_id", "toString(service)")


def _sql_members(name: str) -> str:
    """payload.before / payload.after as (name, value text) pairs (the engine's JSON parser: a cheap pass)."""
    return f"JSONExtractKeysAndValuesRaw(payload, '{name}')"


def _sql_side(name: str) -> str:
    """payload.before / payload.after in JCS form, for a plain payload: members sorted by name, null kept."""
    members = f"arraySort(kv -> kv.1, {_sql_members(name)})"
    return (f"if(JSONExtractRaw(payload, '{name}') = 'null', 'null', concat('{{', "
            f"arrayStringConcat(arrayMap(kv -> concat('\"', kv.1, '\":', kv.2), {members}), ','), '}}'))")


def _sql_unique_names(name: str) -> str:
    members = _sql_members(name)
    return f"length(arrayDistinct(arrayMap(kv -> kv.1, {members}))) = length({members})"


def engine_leaf_sql() -> tuple[str, str]:
    """SQL over an events-table row: (``plain``, ``leaf_hash``).

    ``plain`` is 1 when the engine's bytes are ``row_leaf_bytes``'s (see the
    comment above): no string needs an escape and the payload is empty or
    matches the compact grammar with plain values and no repeated name.
    ``leaf_hash`` is then SHA-256(0x00 || those bytes) as a FixedString(32),
    and meaningless otherwise (those rows are hashed in Python).
    """
    strings = ", ' ', ".join(_LEAF_STRINGS)
    plain = (f"(NOT match(concat({strings}), '{_NEEDS_ESCAPE}') AND isValidUTF8(concat({strings}, ' ', payload))"
             f" AND (payload = '' OR (match(payload, '{_PLAIN_PAYLOAD}') AND {_sql_unique_names('before')}"
             f" AND {_sql_unique_names('after')})))")
    payload = (f"if(payload = '', '{{\"after\":null,\"before\":null}}', concat('{{\"after\":', "
               f"{_sql_side('after')}, ',\"before\":', {_sql_side('before')}, '}}'))")
    text = (
        "concat('{\"action\":\"', toString(action), '\",\"actor\":{\"display\":\"', actor_display,"
        " '\",\"id\":\"', actor_id, '\",\"kind\":\"', toString(actor_kind), '\"},\"category\":\"',"
        " toString(category), '\",\"context\":{\"ip\":\"', ip, '\",\"request_id\":\"', request_id,"
        " '\",\"service\":\"', toString(service), '\",\"user_agent\":\"', user_agent, '\"},\"id\":\"',"
        " toString(id), '\",\"occurred_at\":\"', replaceOne(toString(occurred_at), ' ', 'T'), 'Z\",\"payload\":',"
        f" {payload}, ',\"target\":{{\"display\":\"', target_display, '\",\"id\":\"', target_id,"
        " '\",\"kind\":\"', toString(target_kind), '\"},\"workspace_id\":\"', workspace_id, '\"}')"
    )
    return plain, f"SHA256(concat(char(0), {text}))"
