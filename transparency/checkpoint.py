"""Signed tree heads (checkpoints): what a workspace's log looked like at a size, signed with Ed25519.

The signature covers a small, line-oriented text (in the spirit of Go's signed
notes and C2SP tlog checkpoints), so an auditor can rebuild it from the JSON
fields with a format string and check it with any Ed25519 library::

    auditlog-checkpoint/v1
    workspace <workspace id>
    size <tree size, decimal>
    root <root hash, 64 lowercase hex digits>
    time <UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ>
    leaf-format v1
    key <key id>

(each line ends with ``\\n``). The key id is the first 16 hex digits of
SHA-256 over the raw 32-byte Ed25519 public key: short enough to print,
long enough that two keys never collide by accident, and computable from
the public key alone. Rotation: the signer has one private key; a keyring
holds every public key ever used, by key id, so old checkpoints keep
verifying after a new key signs the new ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from transparency.canonical import LEAF_FORMAT, format_time
from transparency.errors import InvalidCheckpoint, SigningKeyError

FORMAT = "auditlog-checkpoint/v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class Checkpoint:
    """One signed tree head of one workspace's log."""

    workspace_id: str
    tree_size: int
    root_hash: bytes
    timestamp: datetime
    key_id: str
    signature: bytes = b""

    def body(self) -> bytes:
        """The exact bytes the signature covers (see the module docstring)."""
        return signed_body(self.workspace_id, self.tree_size, self.root_hash, self.timestamp, self.key_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "workspace_id": self.workspace_id,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": format_time(self.timestamp),
            "leaf_format": LEAF_FORMAT,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }

    def dumps(self) -> str:
        """Stable JSON text (sorted keys, no spaces): what the Kafka topic and the files carry."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """Parse a checkpoint object; checks its shape, not its signature (``Keyring.verify`` does).

        Raises:
            InvalidCheckpoint: a missing or malformed field, or another format.
        """
        if not isinstance(data, dict):
            raise InvalidCheckpoint("a checkpoint must be a JSON object")
        if data.get("format") != FORMAT:
            raise InvalidCheckpoint(f"checkpoint format is {data.get('format')!r}, expected {FORMAT!r}")
        if data.get("leaf_format", LEAF_FORMAT) != LEAF_FORMAT:
            raise InvalidCheckpoint(f"checkpoint leaf format {data.get('leaf_format')!r} is not {LEAF_FORMAT!r}")
        try:
            size = data["tree_size"]
            root = str(data["root_hash"])
            when = datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00"))
            signature = base64.b64decode(str(data["signature"]), validate=True)
            checkpoint = cls(str(data["workspace_id"]), size, bytes.fromhex(root), when.astimezone(UTC),
                             str(data["key_id"]), signature)
        except KeyError as err:
            raise InvalidCheckpoint(f"checkpoint has no {err.args[0]!r}") from err
        except ValueError as err:
            raise InvalidCheckpoint(f"checkpoint has a malformed field: {err}") from err
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidCheckpoint(f"checkpoint tree_size {size!r} is not a non-negative integer")
        if not _HEX64.match(root):
            raise InvalidCheckpoint("checkpoint root_hash is not 64 lowercase hex digits")
        return checkpoint

    @classmethod
    def loads(cls, text: str | bytes) -> Checkpoint:
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as err:
            raise InvalidCheckpoint(f"checkpoint is not JSON: {err}") from err


def signed_body(workspace_id: str, tree_size: int, root_hash: bytes, timestamp: datetime, kid: str) -> bytes:
    if "\n" in workspace_id:
        raise InvalidCheckpoint("a workspace id with a newline cannot be put in a checkpoint")
    return (
        f"{FORMAT}\nworkspace {workspace_id}\nsize {tree_size}\nroot {root_hash.hex()}\n"
        f"time {format_time(timestamp)}\nleaf-format {LEAF_FORMAT}\nkey {kid}\n"
    ).encode()


class Signer:
    """Signs checkpoints with one Ed25519 private key. Never logs or prints the key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, workspace_id: str, tree_size: int, root_hash: bytes,
             timestamp: datetime | None = None) -> Checkpoint:
        when = (timestamp or datetime.now(UTC)).astimezone(UTC)
        unsigned = Checkpoint(workspace_id, tree_size, root_hash, when, self.key_id)
        return Checkpoint(workspace_id, tree_size, root_hash, when, self.key_id, self._key.sign(unsigned.body()))

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    def private_pem(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    @classmethod
    def from_pem(cls, pem: str | bytes) -> Signer:
        """A signer from PEM text (PKCS#8, unencrypted) — the file's content or a secret's value.

        Raises:
            SigningKeyError: not PEM, encrypted, or not an Ed25519 key.
        """
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as err:
            raise SigningKeyError(f"the signing key is not an unencrypted PEM private key: {err}") from err
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"the signing key is a {type(key).__name__}, not an Ed25519 key")
        return cls(key)

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        try:
            return cls.from_pem(path.read_bytes())
        except OSError as err:
            raise SigningKeyError(f"cannot read the signing key file {path}: {err.strerror}") from err

    @classmethod
    def load_or_generate(cls, path: Path) -> Signer:
        """The key in ``path``; a new one written there (mode 0600) if the file does not exist."""
        if path.exists():
            return cls.from_file(path)
        signer = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(signer.private_pem())
        return signer


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo).

    Raises:
        SigningKeyError: not a PEM public key, or not Ed25519.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as err:
        raise SigningKeyError(f"not a PEM public key: {err}") from err
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"the public key is a {type(key).__name__}, not an Ed25519 key")
    return key


class Keyring:
    """The public keys a verifier trusts, by key id (the current one and every earlier one)."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self.keys: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            self.add(key)

    def add(self, key: Ed25519PublicKey) -> str:
        kid = key_id(key)
        self.keys[kid] = key
        return kid

    def verify(self, checkpoint: Checkpoint) -> None:
        """Check the checkpoint's signature with the key its key id names.

        Raises:
            InvalidCheckpoint: an unknown key id, or a signature that does not verify.
        """
        key = self.keys.get(checkpoint.key_id)
        if key is None:
            raise InvalidCheckpoint(
                f"checkpoint of {checkpoint.workspace_id} at size {checkpoint.tree_size} is signed by key "
                f"{checkpoint.key_id}, which is not a trusted key ({', '.join(sorted(self.keys)) or 'none'})"
            )
        try:
            key.verify(checkpoint.signature, checkpoint.body())
        except InvalidSignature as err:
            raise InvalidCheckpoint(
                f"checkpoint of {checkpoint.workspace_id} at size {checkpoint.tree_size}: the signature does not "
                f"verify with key {checkpoint.key_id} (the checkpoint was altered or signed by another key)"
            ) from err
