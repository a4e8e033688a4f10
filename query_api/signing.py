"""Compact signed JSON tokens: page cursors and export download tickets.

A token is ``base64url(json).base64url(hmac_sha256)``. Each purpose derives
its own key from the configured secret, so a cursor can never pass for a
ticket or the reverse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class MalformedToken(ValueError):
    """Not of the token's shape (not two base64url parts)."""


class ForgedToken(ValueError):
    """Well formed, but the signature does not match: altered, or signed with another key."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignedJson:
    def __init__(self, secret: str, purpose: str, mac_bytes: int = 32) -> None:
        self._key = hashlib.sha256(f"{purpose}|".encode() + secret.encode()).digest()
        self._mac_bytes = mac_bytes

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[: self._mac_bytes]

    def dumps(self, data: dict[str, Any]) -> str:
        body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def loads(self, token: str, max_length: int = 4096) -> Any:
        """The signed JSON value; raises MalformedToken or ForgedToken."""
        if len(token) > max_length or token.count(".") != 1:
            raise MalformedToken("not a signed token")
        body_part, sig_part = token.split(".")
        try:
            body, signature = _unb64(body_part), _unb64(sig_part)
        except (ValueError, TypeError):
            raise MalformedToken("not base64url") from None
        if not hmac.compare_digest(signature, self._sign(body)):
            raise ForgedToken("signature mismatch")
        try:
            return json.loads(body)
        except ValueError:
            raise MalformedToken("not JSON") from None
