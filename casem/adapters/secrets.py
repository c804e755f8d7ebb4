"""Secrets at rest: tokens, passwords and signing secrets that casem stores for a tenant (integration
credentials, bot tokens, webhook signing secrets) are sealed with Fernet (AES-128-CBC + HMAC-SHA256, from
PyCA's `cryptography`) before they reach the database, and opened only where they are used.

The key comes from, in order:
- `CASEM_SECRET_KEYS`: comma-separated Fernet keys (urlsafe base64, 32 bytes). The first seals; all of them
  open, so a key is rotated by putting the new one first and re-sealing (`SecretBox.rotate`);
- `CASEM_SECRETS_DIR/secret.key` (a mounted Kubernetes secret, say);
- on a laptop, `<CASEM_DATA_DIR>/secrets/secret.key`, created on first use (0600, in a 0700 folder).

Sealed values are prefixed `fernet:` so a stored value says what it is. Nothing here logs a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from casem.adapters.private_files import private_directory
from casem.topology.tenants import data_dir

PREFIX = "fernet:"
KEYS_ENV = "CASEM_SECRET_KEYS"
DIR_ENV = "CASEM_SECRETS_DIR"
KEY_FILE = "secret.key"


class SecretError(Exception):
    """A sealed value that no configured key opens, or a key that is not a Fernet key."""


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretError("no secret key configured")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise SecretError(f"not a Fernet key (32 bytes, urlsafe base64): {exc}") from None

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            raise SecretError("the stored value is not a sealed secret")
        try:
            return self._fernet.decrypt(sealed[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretError("no configured key opens this secret (was the key rotated away?)") from None

    def rotate(self, sealed: str) -> str:
        """The same secret sealed with the first (newest) key."""
        return PREFIX + self._fernet.rotate(sealed.removeprefix(PREFIX).encode()).decode()

    def __repr__(self) -> str:  # never show key material
        return "SecretBox(<keys hidden>)"


def _key_file(path: Path, create: bool, root: Path | None = None) -> bytes | None:
    if path.is_file():
        return path.read_bytes().strip()
    if not create:
        return None
    private_directory(path.parent, root=root)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting together must not each write their own key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    return key


def secret_box_from_env(env: Mapping[str, str] | None = None) -> SecretBox:
    env = os.environ if env is None else env
    configured = env.get(KEYS_ENV)
    if configured:
        return SecretBox([k.strip().encode() for k in configured.split(",") if k.strip()])
    if env.get(DIR_ENV):
        key = _key_file(Path(env[DIR_ENV]) / KEY_FILE, create=False)
        if key is None:
            raise SecretError(f"{DIR_ENV} is set but {Path(env[DIR_ENV]) / KEY_FILE} does not exist")
        return SecretBox([key])
    root = data_dir(dict(env))
    key = _key_file(root / "secrets" / KEY_FILE, create=True, root=root)
    assert key is not None
    return SecretBox([key])
