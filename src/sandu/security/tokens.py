"""Access tokens (short-lived signed JWTs, PyJWT) and refresh tokens (random, stored as
their hash). Pure: the key and the time are arguments, so expiry is tested with a clock.

An access token names the user (`sub`), its role, when it was issued and when the
password was last given (`auth_time`, for acts that need a fresh re-authentication),
and is accepted only with sandu's issuer and audience, signed HS256 with the key —
`alg=none` and every other algorithm are refused.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import jwt

ISSUER = "sandu"
AUDIENCE = "sandu-api"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "role", "iss", "aud", "iat", "nbf", "exp", "jti", "auth_time")
MAX_TOKEN_LENGTH = 4096
VERIFIED_TOKENS = 4096  # tokens whose signature and claims a process keeps verified (`_verified`): at most 16 MiB of them


class TokenInvalid(Exception):
    """The token cannot be accepted; `reason` says why (never the token itself)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    role: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    auth_time: datetime


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def issue_access(key: bytes, *, user_id: int, role: str, now: datetime, auth_time: datetime, minutes: int) -> tuple[str, datetime]:
    expires = now + timedelta(minutes=minutes)
    claims = {"sub": str(user_id), "role": role, "iss": ISSUER, "aud": AUDIENCE, "iat": _ts(now), "nbf": _ts(now),
              "exp": _ts(expires), "jti": uuid.uuid4().hex, "auth_time": _ts(auth_time)}
    return jwt.encode(claims, key, algorithm=ALGORITHM), expires


def decode_access(key: bytes, token: str, now: datetime) -> AccessClaims:
    """The claims of a token that is well-formed, signed with `key`, for sandu, and valid at `now`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("malformed token")
    user_id, role, jti, iat, nbf, exp, auth = _verified(key, token)
    t = _ts(now)
    if t >= exp:
        raise TokenInvalid("token has expired")
    if t < nbf:
        raise TokenInvalid("token is not valid yet")
    return AccessClaims(user_id, role, jti, _dt(iat), _dt(exp), _dt(auth))


@lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(key: bytes, token: str) -> tuple[int, str, str, int, int, int, int]:
    """(user, role, jti, iat, nbf, exp, auth_time) of a token signed with `key` for sandu, whatever the time; raises
    `TokenInvalid` otherwise. Pure — a token verifies the same way under the same key every time — so the token a client
    sends with each of its requests is verified once per process (the `VERIFIED_TOKENS` most recent; a refusal is not
    kept). Its times are checked on every use (`decode_access`), and the user behind it is read on every request."""
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError:
        raise TokenInvalid("token is not for this API") from None
    except jwt.InvalidIssuerError:
        raise TokenInvalid("token was not issued by sandu") from None
    except jwt.InvalidSignatureError:
        raise TokenInvalid("token signature does not verify") from None
    except jwt.InvalidAlgorithmError:
        raise TokenInvalid("token algorithm is not accepted") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenInvalid(f"token lacks the {exc.claim} claim") from None
    except jwt.PyJWTError:
        raise TokenInvalid("malformed token") from None
    try:
        return (int(claims["sub"]), str(claims["role"]), str(claims["jti"]), int(claims["iat"]), int(claims["nbf"]), int(claims["exp"]),
                int(claims["auth_time"]))
    except (TypeError, ValueError):
        raise TokenInvalid("malformed token claims") from None


def new_refresh_token() -> tuple[str, str]:
    """(token for the client, its SHA-256 for the store): 256 random bits."""
    token = secrets.token_urlsafe(32)
    return token, refresh_digest(token)


def refresh_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
