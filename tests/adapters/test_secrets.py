"""Secrets at rest: sealed values open with the configured keys only, rotation, key sources and file modes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from casem.adapters.secrets import PREFIX, SecretBox, SecretError, secret_box_from_env


def test_sealed_values_open_again_and_hide_the_plaintext() -> None:
    box = SecretBox([Fernet.generate_key()])
    sealed = box.seal("xoxb-very-secret")
    assert sealed.startswith(PREFIX) and "xoxb" not in sealed
    assert box.open(sealed) == "xoxb-very-secret"
    assert box.seal("same") != box.seal("same")  # a fresh IV every time
    assert "very-secret" not in repr(box)


def test_another_key_cannot_open_and_says_so() -> None:
    sealed = SecretBox([Fernet.generate_key()]).seal("token")
    with pytest.raises(SecretError, match="no configured key opens"):
        SecretBox([Fernet.generate_key()]).open(sealed)
    with pytest.raises(SecretError, match="not a sealed secret"):
        SecretBox([Fernet.generate_key()]).open("plaintext")
    with pytest.raises(SecretError, match="not a Fernet key"):
        SecretBox([b"short"])


def test_rotation_keeps_old_secrets_readable_and_reseals_with_the_new_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed = SecretBox([old]).seal("token")
    both = SecretBox([new, old])
    assert both.open(sealed) == "token"
    rotated = both.rotate(sealed)
    assert SecretBox([new]).open(rotated) == "token"
    with pytest.raises(SecretError):
        SecretBox([old]).open(rotated)


def test_keys_from_the_environment_win(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    box = secret_box_from_env({"CASEM_SECRET_KEYS": f" {key.decode()} ,", "CASEM_DATA_DIR": str(tmp_path)})
    assert SecretBox([key]).open(box.seal("x")) == "x"
    assert not (tmp_path / "secrets").exists()  # nothing written when the operator gives the key


def test_secrets_dir_must_hold_the_key(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="does not exist"):
        secret_box_from_env({"CASEM_SECRETS_DIR": str(tmp_path)})
    key = Fernet.generate_key()
    (tmp_path / "secret.key").write_bytes(key + b"\n")
    assert SecretBox([key]).open(secret_box_from_env({"CASEM_SECRETS_DIR": str(tmp_path)}).seal("y")) == "y"


def test_laptop_default_creates_one_private_key_and_reuses_it(tmp_path: Path) -> None:
    env = {"CASEM_DATA_DIR": str(tmp_path)}
    sealed = secret_box_from_env(env).seal("z")
    key_file = tmp_path / "secrets" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert secret_box_from_env(env).open(sealed) == "z"  # the same key on the next start
