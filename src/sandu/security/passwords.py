"""Passwords: argon2id hashes (argon2-cffi), a length rule, and a constant-cost check
for unknown users so that a login's timing does not tell whether a name exists."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sandu.domain.errors import InvalidInput

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
_PASSWORD_ALLOWED = f"{MIN_PASSWORD_LENGTH}..{MAX_PASSWORD_LENGTH} characters"


@lru_cache(maxsize=4)
def hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def check_new_password(password: object, field: str = "password") -> str:
    """A password a user may choose: text of the allowed length (never echoed back)."""
    if not isinstance(password, str):
        raise InvalidInput(field, "must be text", _PASSWORD_ALLOWED)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(field, f"has {len(password)} characters, fewer than {MIN_PASSWORD_LENGTH}", _PASSWORD_ALLOWED)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(field, f"has more than {MAX_PASSWORD_LENGTH} characters", _PASSWORD_ALLOWED)
    if not password.strip():
        raise InvalidInput(field, "is only white space", _PASSWORD_ALLOWED)
    return password


def hash_password(ph: PasswordHasher, password: str) -> str:
    return ph.hash(password)


def verify_password(ph: PasswordHasher, stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no stored hash (unknown user) a decoy hash is
    checked anyway, so both cases cost the same."""
    target = stored_hash if stored_hash is not None else _decoy_hash(ph)
    try:
        ok = ph.verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and stored_hash is not None


def _decoy_hash(ph: PasswordHasher) -> str:
    return _decoy_for(ph.time_cost, ph.memory_cost)


@lru_cache(maxsize=4)
def _decoy_for(time_cost: int, memory_kib: int) -> str:
    return hasher(time_cost, memory_kib).hash("sandu: a password no account has")
