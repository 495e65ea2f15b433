"""Time-ordered identifiers (UUIDv7), so primary keys sort by creation and index well."""

from __future__ import annotations

import secrets
import time
import uuid


def new_id(at_ms: int | None = None) -> uuid.UUID:
    """A UUIDv7: 48-bit Unix milliseconds, version and variant bits, 74 random bits."""
    timestamp_ms = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    random_bits = secrets.randbits(74)
    value = (timestamp_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (random_bits >> 62) << 64
    value |= 0b10 << 62
    value |= random_bits & ((1 << 62) - 1)
    return uuid.UUID(int=value)
