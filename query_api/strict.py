"""Strict input: a parameter the endpoint does not know, or a body it does not read, is a 400.

A misspelt filter (``catgory=members``) silently ignored answers a different
question than the one asked (here: the whole log), so each endpoint names the
query parameters it reads and refuses anything else, naming the known ones.
A parameter given twice is refused too (which one would count?).
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable

from fastapi import Request

from query_api.errors import UnexpectedBody, UnknownParameter


def only_params(*names: str) -> Callable[[Request], None]:
    """A dependency that refuses query parameters other than ``names``, and any given twice."""
    known = frozenset(names)
    listed = ", ".join(names) if names else "none"

    def check(request: Request) -> None:
        seen: set[str] = set()
        for key, _ in request.query_params.multi_items():
            if key not in known:
                near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f" Did you mean {near[0]}?" if near else ""
                raise UnknownParameter(
                    f"{key!r} is not a parameter of this endpoint.{hint} Known parameters: {listed}.", key
                )
            if key in seen:
                raise UnknownParameter(f"{key} is given more than once; give it once.", key)
            seen.add(key)

    return check


def no_body(example: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that refuses a request body where the endpoint reads only its query string."""

    async def check(request: Request) -> None:
        if await request.body():
            raise UnexpectedBody(
                f"This endpoint takes its filters as query parameters ({example}) and reads no body; "
                "a body would be ignored, so it is refused. Send the filters in the query string and no body.",
                "body",
            )

    return check
