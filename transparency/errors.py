"""Errors of the transparency log: each names what is wrong in words a person (or an auditor) can act on."""

from __future__ import annotations


class TransparencyError(Exception):
    """Base class for everything the Merkle log, its checkpoints and the verifier raise."""


class InvalidProof(TransparencyError):
    """An inclusion or consistency proof does not verify against the given hashes and sizes."""


class InvalidTreeRange(TransparencyError):
    """A leaf index, tree size or pair of sizes that no proof can exist for (e.g. index past the end)."""


class MissingHash(TransparencyError):
    """The store lacks a complete-subtree hash a proof or a root needs (the log is incomplete or damaged)."""


class InvalidCanonicalForm(TransparencyError):
    """An event cannot be turned into leaf bytes (a missing field, a value JSON cannot carry exactly)."""


class InvalidCheckpoint(TransparencyError):
    """A checkpoint is malformed, signed by an unknown key, or its signature does not verify."""


class SigningKeyError(TransparencyError):
    """A signing key cannot be loaded (unreadable file, not an Ed25519 key, a placeholder secret)."""


class SequencerError(TransparencyError):
    """The stored log is in a state the sequencer must not append to (a hole, two leaves at one index)."""
