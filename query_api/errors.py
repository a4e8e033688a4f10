"""Errors the query API turns into 4xx answers with a message for a person."""

from __future__ import annotations


class ApiError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidFilter(ApiError):
    code = "invalid_filter"


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
