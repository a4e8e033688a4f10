"""Signing keys from settings: the secret wins, a file is created outside production only, rotated keys stay trusted."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings
from transparency.checkpoint import Signer, public_pem
from transparency.errors import SigningKeyError
from transparency.service import load_keyring, load_signer


def settings_for(tmp_path: Path, **transparency: object) -> Settings:
    return Settings.model_validate({"transparency": {"signing_key_file": str(tmp_path / "k.pem"), **transparency}})


def test_development_creates_the_key_file_once(tmp_path: Path) -> None:
    first = load_signer(settings_for(tmp_path))
    assert (tmp_path / "k.pem").exists()
    assert load_signer(settings_for(tmp_path)).key_id == first.key_id


def test_production_never_invents_a_key(tmp_path: Path) -> None:
    prod = settings_for(tmp_path).model_copy(update={"environment": "production"})
    with pytest.raises(SigningKeyError, match="AUDITLOG_TRANSPARENCY__SIGNING_KEY"):
        load_signer(prod)
    assert not (tmp_path / "k.pem").exists()


def test_the_secret_wins_and_previous_keys_stay_trusted(tmp_path: Path) -> None:
    current, old = Signer.generate(), Signer.generate()
    (tmp_path / "old.pub").write_text(public_pem(old.public_key))
    settings = settings_for(tmp_path, signing_key=current.private_pem().decode(),
                            previous_public_key_files=[str(tmp_path / "old.pub")])
    assert load_signer(settings).key_id == current.key_id
    assert set(load_keyring(settings).keys) == {current.key_id, old.key_id}
    assert "BEGIN" not in repr(settings.transparency)  # the secret is not printed with the settings
    with pytest.raises(SigningKeyError, match="cannot read the previous public key"):
        load_keyring(settings_for(tmp_path, previous_public_key_files=[str(tmp_path / "missing.pub")]))
