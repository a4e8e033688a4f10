"""Errors the query API turns into 4xx answers with a message for a person.

Every 4xx has one body (``models.ErrorOut``): ``status``, ``code``,
``message`` and ``field`` (the parameter at fault, when there is one).
"""

from __future__ import annotations


class ApiError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidFilter(ApiError):
    code = "invalid_filter"


class InvalidParameter(ApiError):
    """A parameter of the wrong type or out of range, or one the endpoint does not know."""

    code = "invalid_parameter"


class UnknownParameter(ApiError):
    code = "unknown_parameter"


class UnexpectedBody(ApiError):
    code = "unexpected_body"


class InvalidCursor(ApiError):
    code = "invalid_cursor"


class NotAuthenticated(ApiError):
    status_code = 401
    code = "not_authenticated"


class NoAccess(ApiError):
    status_code = 403
    code = "no_access"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class LinkUsed(ApiError):
    """A single-use download link presented a second time."""

    status_code = 410
    code = "link_used"
