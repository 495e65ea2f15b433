"""The code secret of a member's device: derived by the server, kept by the app, never stored.

At login each phone gets a device (a slot 0-99 of the member) and its code secret, with which the app
computes rotating member codes offline (points.member_codes, and docs/app-integration.md for the app).

Deriving the secret (server only):
    secret = HMAC-SHA256(key=UTF-8 code signing key, data=
                 ASCII "tsunagari-device-code-secret-v1" || 0x00
                 || member id (16 bytes, RFC 4122 byte order) || slot (1 byte) || salt (16 bytes))
The database keeps only the salt, so a copy of it alone cannot mint codes (the same idea as the
terminal secrets in stores/pos_signature.py). Revoking a device means forgetting its salt. The app
receives the secret base32-encoded (RFC 4648, no padding).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid

MAX_DEVICE_SLOT = 99
SALT_BYTES = 16
SECRET_BYTES = 32
CODE_STEP_S = 30  # a member code changes every 30 seconds
CODE_ALGORITHM = "tsunagari-member-code-v1"

_SECRET_PREFIX = b"tsunagari-device-code-secret-v1\x00"


def new_device_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def device_code_secret(code_signing_key: str, member_id: uuid.UUID, slot: int, salt: bytes) -> bytes:
    """The 32-byte secret a device computes its codes with, re-derivable from the key and the salt."""
    if not code_signing_key:
        raise ValueError("the code signing key must not be empty")
    check_slot(slot)
    if len(salt) != SALT_BYTES:
        raise ValueError(f"the device salt must be {SALT_BYTES} bytes")
    message = _SECRET_PREFIX + member_id.bytes + slot.to_bytes(1, "big") + salt
    return hmac.new(code_signing_key.encode(), message, hashlib.sha256).digest()


def secret_for_app(secret: bytes) -> str:
    """Base32 without padding: the form the app stores and every mobile platform can decode."""
    check_secret(secret)
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def secret_from_app(text: str) -> bytes:
    """The inverse of `secret_for_app`, tolerant of lowercase and of padding present or not."""
    unpadded = text.strip().rstrip("=")
    try:
        secret = base64.b32decode(unpadded + "=" * (-len(unpadded) % 8), casefold=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("the code secret is not base32") from error
    check_secret(secret)
    return secret


def check_slot(slot: int) -> None:
    if not 0 <= slot <= MAX_DEVICE_SLOT:
        raise ValueError(f"the device slot must be between 0 and {MAX_DEVICE_SLOT}")


def check_secret(secret: bytes) -> None:
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a device code secret is {SECRET_BYTES} bytes")
