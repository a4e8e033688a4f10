from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from config.settings import ApiSettings
from query_api.errors import NotAuthenticated
from query_api.security import TokenVerifier, issue_token


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_rs256_tokens_are_verified_with_the_public_key_from_settings():
    private, public = _pem_pair()
    api = ApiSettings(jwt_algorithm="RS256", jwt_public_key=public)
    token = issue_token(api, user_id="u1", email="alex@example.com", roles={"ws_1": "owner"}, private_key=private)
    principal = TokenVerifier(api).verify(f"Bearer {token}")
    assert principal.role_in("ws_1") == "owner"


def test_an_rs256_token_from_another_key_is_401():
    private, _ = _pem_pair()
    _, other_public = _pem_pair()
    api = ApiSettings(jwt_algorithm="RS256", jwt_public_key=other_public)
    token = issue_token(api, user_id="u1", email="e", roles={"ws_1": "owner"}, private_key=private)
    with pytest.raises(NotAuthenticated):
        TokenVerifier(api).verify(f"Bearer {token}")


def test_an_hs256_token_is_refused_when_the_service_expects_rs256():
    _, public = _pem_pair()
    hs = ApiSettings(jwt_secret="a-secret-that-is-at-least-32-bytes!!")
    token = issue_token(hs, user_id="u1", email="e", roles={"ws_1": "owner"})
    with pytest.raises(NotAuthenticated):
        TokenVerifier(ApiSettings(jwt_algorithm="RS256", jwt_public_key=public)).verify(f"Bearer {token}")
