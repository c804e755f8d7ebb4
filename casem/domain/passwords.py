"""Password rules for console accounts (pure: the hashing itself is the application layer's job).

After NIST SP 800-63B: length matters, composition rules do not. A password must be 12 to 256
characters, must not be the account's e-mail address or its local part, and must not be one of a few
passwords every attacker tries first; any other characters (spaces, emoji) are allowed.
"""

from __future__ import annotations

from typing import Any

from casem.domain.errors import InvalidInput

PASSWORD_MIN = 12
PASSWORD_MAX = 256  # Argon2 hashes any length; the cap keeps a request from making it hash megabytes

# The first guesses of any password spray: refused outright even when long enough.
_FIRST_GUESSES = frozenset(
    {
        "123456789012",
        "1234567890123",
        "password1234",
        "passwordpassword",
        "qwertyuiopas",
        "qwerty123456",
        "changemechangeme",
        "letmeinletmein",
        "administrator",
        "adminadminadmin",
        "casemcasemcasem",
    }
)


def validate_password(password: Any, email: str, pointer: str = "/password") -> str:
    """The password if it may be used for the account `email`; InvalidInput saying why not otherwise."""
    if not isinstance(password, str):
        raise InvalidInput("the password must be text", pointer)
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"the password must be at least {PASSWORD_MIN} characters long", pointer)
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"the password must be at most {PASSWORD_MAX} characters long", pointer)
    lowered = password.strip().lower()
    local = email.lower().split("@", 1)[0]
    if lowered in (email.lower(), local):
        raise InvalidInput("the password must not be the e-mail address", pointer)
    if lowered in _FIRST_GUESSES or len(set(password)) < 4:
        raise InvalidInput("this password is among the first ones attackers try: choose another", pointer)
    return password
