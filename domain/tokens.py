"""Short-lived access tokens (JWT, HS256) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from enum import StrEnum

import jwt
import msgspec

from domain.keys import FIRST_KEY_ID, KeyRing, SigningKey

ALGORITHM = "HS256"
ISSUER = "tsunagari"


class Audience(StrEnum):
    MEMBER = "member"
    STAFF = "staff"


class AccessClaims(msgspec.Struct, frozen=True):
    subject_id: uuid.UUID
    audience: Audience
    role: str | None
    expires_at: datetime
    device_slot: int | None = None


class TokenInvalid(Exception):
    """The token is malformed, badly signed, or for another audience."""


class TokenExpired(TokenInvalid):
    pass


def issue_access_token(
    key: SigningKey,
    subject_id: uuid.UUID,
    audience: Audience,
    role: str | None,
    now: datetime,
    ttl: timedelta,
    device_slot: int | None = None,
) -> tuple[str, datetime]:
    expires_at = now + ttl
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": str(subject_id),
        "aud": audience.value,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    if role is not None:
        claims["role"] = role
    if device_slot is not None:
        claims["dev"] = device_slot
    token = jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.key_id})
    return token, expires_at


def read_access_token(keys: KeyRing, token: str, audience: Audience, now: datetime) -> AccessClaims:
    """The claims of a token signed by a key of `keys` accepted at `now` (the one its `kid` names).

    A token without `kid` was issued before keys had ids, under the first key.
    """
    try:
        key_id = jwt.get_unverified_header(token).get("kid", FIRST_KEY_ID)
        key = keys.usable(key_id, now) if isinstance(key_id, str) else None
        if key is None:
            raise TokenInvalid("signed by a retired or unknown key")
        claims = jwt.decode(
            token,
            key.secret,
            algorithms=[ALGORITHM],
            audience=audience.value,
            issuer=ISSUER,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["sub", "exp", "aud", "iss"],
            },
        )
        subject_id = uuid.UUID(claims["sub"])
        expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
    except (jwt.InvalidTokenError, ValueError, TypeError) as error:
        raise TokenInvalid(str(error)) from error
    # Time claims are checked against the injected clock (PyJWT would use the wall clock).
    if expires_at <= now:
        raise TokenExpired("access token expired")
    role = claims.get("role")
    device_slot = claims.get("dev")
    return AccessClaims(
        subject_id,
        audience,
        role if isinstance(role, str) else None,
        expires_at,
        device_slot if isinstance(device_slot, int) else None,
    )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_digest(token: str) -> bytes:
    """Refresh tokens are stored as SHA-256 digests: high-entropy, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).digest()
