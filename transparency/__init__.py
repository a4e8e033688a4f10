"""Tamper evidence: every workspace's audit log is an RFC 9162 Merkle log with signed checkpoints.

- ``merkle``: hashing, tree heads, inclusion and consistency proofs from stored subtree hashes, verification.
- ``canonical``: an event's leaf bytes (RFC 8785 JCS of the exported event).
- ``checkpoint``: Ed25519-signed tree heads, key ids, keyrings for rotation.
- ``verify``: offline verification of a log export against signed checkpoints.
"""
