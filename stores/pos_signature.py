"""How a POS terminal signs a request, and how its secret relates to the server's key.

Canonical request (UTF-8, lines joined by `\\n`):
    METHOD
    path?query (exactly as sent)
    timestamp (Unix seconds)
    nonce (the Tsunagari-Nonce header; terminals of the previous release send none and sign without it)
    hex SHA-256 of the body (of the empty string for no body)
Signature: hex HMAC-SHA256 of the canonical request under the terminal secret.

Without a nonce, two identical requests signed in the same second have the same signature and the second
is refused as a replay; a fresh nonce per request makes every request's signature its own.

Terminal secrets are derived from a server terminal key (the one the terminal's `server_key_id` names, so
the server key can be rotated: domain.keys), the key id and a random salt, so the database keeps only the
salt and a digest: a copy of the database cannot sign requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime

KEY_ID_HEADER = "tsunagari-key-id"
TIMESTAMP_HEADER = "tsunagari-timestamp"
SIGNATURE_HEADER = "tsunagari-signature"
NONCE_HEADER = "tsunagari-nonce"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
KEY_ID_PREFIX = "tk_"


def new_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(10)


def new_salt() -> bytes:
    return secrets.token_bytes(16)


def derive_terminal_secret(terminal_key: str, key_id: str, salt: bytes) -> str:
    material = hmac.new(
        terminal_key.encode(), b"pos-terminal\x00" + key_id.encode() + b"\x00" + salt, "sha256"
    )
    return "ts_" + base64.urlsafe_b64encode(material.digest()).decode().rstrip("=")


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def canonical_request(
    method: str, path_with_query: str, timestamp: str, body: bytes, nonce: str | None = None
) -> bytes:
    signed_time = (timestamp,) if nonce is None else (timestamp, nonce)
    return "\n".join(
        (method.upper(), path_with_query, *signed_time, hashlib.sha256(body).hexdigest())
    ).encode()


def nonce_well_formed(nonce: str) -> bool:
    """16 to 64 characters of A-Z a-z 0-9 _ - (a UUID's hex, or 16 random bytes in base64url)."""
    return _NONCE.fullmatch(nonce) is not None


def sign(secret: str, canonical: bytes) -> str:
    return hmac.new(secret.encode(), canonical, "sha256").hexdigest()


def signature_headers(
    key_id: str,
    secret: str,
    method: str,
    path_with_query: str,
    body: bytes,
    timestamp: str,
    nonce: str | None,
) -> dict[str, str]:
    """A request's signature headers as a register sends them (docs/pos-integration.md); `nonce` None: the
    previous release's form. For the project's own registers: benchmarks and tests."""
    canonical = canonical_request(method, path_with_query, timestamp, body, nonce)
    headers = {
        KEY_ID_HEADER.title(): key_id,
        TIMESTAMP_HEADER.title(): timestamp,
        SIGNATURE_HEADER.title(): sign(secret, canonical),
    }
    if nonce is not None:
        headers[NONCE_HEADER.title()] = nonce
    return headers


def signature_matches(secret: str, canonical: bytes, presented: str) -> bool:
    return hmac.compare_digest(sign(secret, canonical), presented.strip().lower())


def timestamp_within(timestamp: str, now: datetime, skew_s: int) -> bool:
    """True when the signed Unix-seconds timestamp is within `skew_s` of the server clock."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:  # "²" is a digit too
        return False
    return abs(int(timestamp) - now.timestamp()) <= skew_s
