"""Passwords as argon2id hashes, and the random secrets of sessions and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile (64 MiB, 3 passes).
_hasher = PasswordHasher()

#: Shortest password accepted for an operator.
MIN_PASSWORD_CHARS = 12

#: Prefix of API tokens, so a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "nso_"  # noqa: S105 - a prefix, not a secret


def hash_password(password: str) -> str:
    """The argon2id hash of *password* (salted, parameters encoded in the string).

    Raises:
      ValueError: The password is shorter than ``MIN_PASSWORD_CHARS``.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether *password* matches *password_hash* (never raises on a mismatch or a bad hash)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


#: A hash to verify against when the name is unknown, so that timing does not tell names apart.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def burn_time(password: str) -> None:
    """Spend as long as a real verification (for an unknown name)."""
    verify_password(_DUMMY_HASH, password)


def generate_password() -> str:
    """A random password of 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


def new_secret(prefix: str = "") -> str:
    """A random token of 256 bits for a session cookie or an API token."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 hex digest of a random *secret*: how sessions and tokens are stored."""
    return hashlib.sha256(secret.encode()).hexdigest()
