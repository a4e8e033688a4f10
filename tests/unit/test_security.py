from __future__ import annotations

import time

import jwt
import pytest

from config.settings import ApiSettings
from query_api.errors import NoAccess, NotAuthenticated
from query_api.security import TokenVerifier, issue_token

API = ApiSettings(jwt_secret="unit-test-secret-of-32-bytes-long!!")


def _bearer(**kw):
    return "Bearer " + issue_token(API, user_id="u1", email="alex@example.com", **kw)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_may_read(role):
    principal = TokenVerifier(API).verify(_bearer(roles={"ws_1": role}))
    principal.require_reader("ws_1")


@pytest.mark.parametrize("role", ["member", "viewer", "billing"])
def test_other_roles_get_the_polite_no_access_message(role):
    principal = TokenVerifier(API).verify(_bearer(roles={"ws_1": role}))
    with pytest.raises(NoAccess, match="only available to its owners and admins"):
        principal.require_reader("ws_1")


def test_an_owner_of_another_workspace_has_no_access():
    principal = TokenVerifier(API).verify(_bearer(roles={"ws_2": "owner"}))
    with pytest.raises(NoAccess):
        principal.require_reader("ws_1")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer not.a.jwt"])
def test_missing_or_malformed_tokens_are_401(header):
    with pytest.raises(NotAuthenticated):
        TokenVerifier(API).verify(header)


def test_a_token_signed_with_another_key_is_401():
    other = ApiSettings(jwt_secret="another-secret-of-32-bytes-long!!!")
    with pytest.raises(NotAuthenticated, match="not valid"):
        TokenVerifier(API).verify("Bearer " + issue_token(other, user_id="u", email="e", roles={"ws_1": "owner"}))


def test_an_expired_token_is_401():
    token = jwt.encode({"sub": "u", "roles": {"ws_1": "owner"}, "iss": "auditlog", "exp": int(time.time()) - 10},
                       API.jwt_secret, algorithm="HS256")
    with pytest.raises(NotAuthenticated, match="expired"):
        TokenVerifier(API).verify("Bearer " + token)


@pytest.mark.parametrize("ttl", [0, -5])
def test_a_token_born_expired_is_refused_at_issue(ttl):
    with pytest.raises(ValueError, match="ttl_seconds must be positive"):
        issue_token(API, user_id="u1", email="e", roles={"ws_1": "owner"}, ttl_seconds=ttl)
