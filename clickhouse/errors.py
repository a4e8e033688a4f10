"""Errors of the storage layer."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for ClickHouse storage failures."""


class StoreUnavailable(StoreError):
    """The store did not take the write; retrying later may succeed."""


class MigrationError(StoreError):
    """A migration file is missing, misnumbered, or failed to apply."""
