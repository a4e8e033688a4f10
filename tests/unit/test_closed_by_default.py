"""Outside development the product refuses to start with a secret anyone could know, or no way to verify.

Each refusal names the variable to set. The embedded mode (`auditlog up`)
makes its own random secrets instead of signing with the published placeholder.
"""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from auditlog.embedded import local_secrets, with_local_secrets
from config.settings import DEV_PLACEHOLDER_SECRET, ApiSettings, Settings
from query_api.errors import LinkUsed
from query_api.security import InvalidJwtConfig, TokenVerifier, issue_token
from query_api.tickets import UsedTickets

GOOD_CURSOR = "c" * 40


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


RSA_PUBLIC = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PUBLIC = _pem(ec.generate_private_key(ec.SECP256R1()))


def _settings(environment: str = "production", **api: str) -> Settings:
    return Settings.model_validate({"environment": environment, "api": {"cursor_secret": GOOD_CURSOR, **api}})


@pytest.mark.parametrize(
    ("api", "names"),
    [
        ({"jwt_algorithm": "HS512"}, "AUDITLOG_API__JWT_SECRET"),  # the placeholder default
        ({"jwt_algorithm": "HS384", "jwt_secret": "changethis"}, "AUDITLOG_API__JWT_SECRET"),
        ({"jwt_algorithm": "HS256", "jwt_secret": ""}, "AUDITLOG_API__JWT_SECRET"),
        ({"jwt_algorithm": "HS256", "jwt_secret": DEV_PLACEHOLDER_SECRET}, "AUDITLOG_API__JWT_SECRET"),
        ({"jwt_algorithm": "HS512", "jwt_secret": "s" * 40}, "at least 64 bytes for HS512"),
        ({"jwt_algorithm": "RS256"}, "AUDITLOG_API__JWT_PUBLIC_KEY"),
        ({"jwt_algorithm": "RS256", "jwt_public_key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"},
         "is not a PEM public key"),
        ({"jwt_algorithm": "ES256", "jwt_public_key": RSA_PUBLIC}, "holds no EC public key"),
        ({"jwt_algorithm": "RS256", "jwt_public_key": EC_PUBLIC}, "holds no RSA public key"),
        ({"jwt_algorithm": "none", "jwt_secret": "s" * 64}, "AUDITLOG_API__JWT_ALGORITHM='none' is not supported"),
        ({"jwt_secret": "s" * 64, "cursor_secret": DEV_PLACEHOLDER_SECRET}, "AUDITLOG_API__CURSOR_SECRET"),
        ({"jwt_secret": "s" * 64, "cursor_secret": "short"}, "AUDITLOG_API__CURSOR_SECRET must be at least 32"),
    ],
)
@pytest.mark.parametrize("environment", ["production", "staging"])
def test_outside_development_unsafe_keys_are_refused_naming_the_variable(api, names, environment):
    with pytest.raises(ValidationError, match=names):
        _settings(environment, **api)


@pytest.mark.parametrize(
    "api",
    [
        {"jwt_algorithm": "HS256", "jwt_secret": "s" * 32},
        {"jwt_algorithm": "HS512", "jwt_secret": "s" * 64},
        {"jwt_algorithm": "RS256", "jwt_public_key": RSA_PUBLIC},
        {"jwt_algorithm": "PS384", "jwt_public_key": RSA_PUBLIC},
        {"jwt_algorithm": "ES256", "jwt_public_key": EC_PUBLIC},
    ],
)
def test_real_keys_start_in_production(api):
    settings = _settings(**api)
    TokenVerifier(settings.api)  # and the verifier builds


def test_development_keeps_the_placeholder_but_not_an_unusable_key():
    assert Settings(environment="development").api.jwt_secret == DEV_PLACEHOLDER_SECRET
    with pytest.raises(ValidationError, match="AUDITLOG_API__JWT_PUBLIC_KEY"):
        _settings("development", jwt_algorithm="RS256")


def test_a_verifier_with_no_public_key_refuses_to_be_built_instead_of_answering_500():
    with pytest.raises(InvalidJwtConfig, match="AUDITLOG_API__JWT_PUBLIC_KEY"):
        TokenVerifier(ApiSettings(jwt_algorithm="RS256"))


def test_a_token_from_the_published_placeholder_does_not_verify_against_a_real_secret():
    forged = issue_token(ApiSettings(jwt_algorithm="HS512"), user_id="mallory", email="m@evil.example",
                         roles={"ws_any": "owner"})
    real = _settings(jwt_algorithm="HS512", jwt_secret="r" * 64).api
    with pytest.raises(Exception, match="not valid"):
        TokenVerifier(real).verify(f"Bearer {forged}")


def test_the_embedded_mode_makes_its_own_secrets_once_and_keeps_them_private(tmp_path):
    path = tmp_path / "var" / "secrets.json"
    first = local_secrets(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert DEV_PLACEHOLDER_SECRET not in first.values() and all(len(v) >= 32 for v in first.values())
    assert local_secrets(path) == first  # reused on the next start
    path.chmod(0o644)
    assert local_secrets(path) == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_secrets(tmp_path / "other.json") != first  # random, not derived


def test_the_embedded_mode_replaces_only_the_placeholder(tmp_path):
    path = tmp_path / "secrets.json"
    replaced = with_local_secrets(Settings(), path)
    assert replaced.api.jwt_secret == local_secrets(path)["jwt_secret"]
    assert replaced.api.cursor_secret == local_secrets(path)["cursor_secret"]
    own = Settings.model_validate({"api": {"jwt_secret": "mine-" * 10}})
    assert with_local_secrets(own, path).api.jwt_secret == "mine-" * 10


def test_a_ticket_id_is_claimed_once():
    used = UsedTickets()
    used.claim("t1", 2e9)
    with pytest.raises(LinkUsed, match="already used"):
        used.claim("t1", 2e9)
    used.claim("t2", 2e9)
