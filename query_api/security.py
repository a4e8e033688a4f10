"""Bearer tokens: signed JWTs naming the user and their role in each workspace.

Claims: ``sub`` (user id), ``email``, ``roles`` ({workspace_id: role}),
``exp``. HS256/384/512 with a shared secret, or RS*/PS*/ES* with a public
key, from settings. A verifier whose algorithm or key cannot work refuses to
be built (``InvalidJwtConfig``), so the API fails at start-up, not with a 500
on the first token. Only owners and admins of a workspace may read its audit
log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from config.settings import HMAC_KEY_BYTES, ApiSettings, jwt_key_problems
from query_api.errors import NoAccess, NotAuthenticated

READER_ROLES = frozenset({"owner", "admin"})
# The roles of a workspace's people: owners and admins read the audit log, a member gets the no-access
# message. Tokens from an IdP may carry others (they read nothing); `auditlog token` issues only these.
WORKSPACE_ROLES = ("owner", "admin", "member")

NO_ACCESS_MESSAGE = (
    "Sorry, the audit log of this workspace is only available to its owners and admins. "
    "Ask an owner of the workspace if you need access."
)


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    roles: dict[str, str]

    def role_in(self, workspace_id: str) -> str | None:
        return self.roles.get(workspace_id)

    def require_reader(self, workspace_id: str) -> None:
        """Raise NoAccess unless this user is an owner or admin of ``workspace_id``."""
        if self.role_in(workspace_id) not in READER_ROLES:
            raise NoAccess(NO_ACCESS_MESSAGE)


class InvalidJwtConfig(ValueError):
    """The configured JWT algorithm or key cannot verify any token."""


def verification_key(settings: ApiSettings) -> str:
    """The key tokens are verified with: the shared secret (HS*) or the public key (RS*, PS*, ES*)."""
    return settings.jwt_secret if settings.jwt_algorithm in HMAC_KEY_BYTES else settings.jwt_public_key


class TokenVerifier:
    def __init__(self, settings: ApiSettings) -> None:
        problems = jwt_key_problems(settings)
        if problems:
            raise InvalidJwtConfig("; ".join(problems))
        self._algorithm = settings.jwt_algorithm
        self._key = verification_key(settings)
        self._issuer = settings.jwt_issuer

    def verify(self, authorization: str | None) -> Principal:
        if not authorization:
            raise NotAuthenticated("Sign in first: send 'Authorization: Bearer <token>'.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("The Authorization header must be 'Bearer <token>'.")
        try:
            claims = jwt.decode(
                token.strip(),
                self._key,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("Your session has expired: sign in again.") from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated("The bearer token is not valid: sign in again.") from None
        roles = claims.get("roles")
        if not isinstance(roles, dict):
            roles = {}
        return Principal(
            user_id=str(claims["sub"]),
            email=str(claims.get("email") or claims["sub"]),
            roles={str(k): str(v) for k, v in roles.items()},
        )


def issue_token(settings: ApiSettings, *, user_id: str, email: str, roles: dict[str, str],
                ttl_seconds: int = 12 * 3600, private_key: str | None = None) -> str:
    """A signed token for local use (the demo run, tests, scripts). Production tokens come from the IdP.

    Raises:
        ValueError: ``ttl_seconds`` is not positive (the token would be born expired).
    """
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "email": email,
        "roles": roles,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    key = settings.jwt_secret if settings.jwt_algorithm in HMAC_KEY_BYTES else private_key
    if key is None:
        raise ValueError(f"{settings.jwt_algorithm} tokens need the private key")
    return jwt.encode(claims, key, algorithm=settings.jwt_algorithm)
