"""Signing keys with ids, so a key can be rotated while what the previous one signed keeps working.

A key ring holds the current key, which signs everything new, and up to MAX_PREVIOUS_KEYS previous keys,
each accepted until its `retire_at` and refused from then on. Everything signed says (or records) the id of
its key, so verifying costs one key, never a search; member codes, which have no room for an id, are the
exception (points.register tries the few accepted keys).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec

# What every key was called before keys had ids: a token without `kid`, a terminal or device from before
# rotation existed, was signed by the key of this id.
FIRST_KEY_ID = "k1"
KEY_ID_PATTERN = r"[A-Za-z0-9_-]{1,32}"
MIN_KEY_LENGTH = 32
# Each accepted key costs a member-code scan one more HMAC and widens the odds of a guessed code by one
# part in a million; two previous keys cover a rotation started while the last one is still overlapping.
MAX_PREVIOUS_KEYS = 2

_KEY_ID = re.compile(KEY_ID_PATTERN)


class SigningKey(msgspec.Struct, frozen=True, kw_only=True):
    """One key: `retire_at` is None for the current key, the end of its overlap for a previous one."""

    key_id: str = msgspec.field(name="id")
    secret: str = msgspec.field(name="key")
    retire_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class KeyRing(msgspec.Struct, frozen=True):
    current: SigningKey
    previous: tuple[SigningKey, ...] = ()

    def usable(self, key_id: str, now: datetime) -> SigningKey | None:
        """The key named `key_id` if it may still verify at `now`: the current one, or a previous one
        before its retire time; None for a retired or unknown id."""
        return next((key for key in self.accepted(now) if key.key_id == key_id), None)

    def accepted(self, now: datetime) -> tuple[SigningKey, ...]:
        """The keys that verify at `now`, the current one first."""
        return (self.current, *(key for key in self.previous if is_accepted(key, now)))


def is_accepted(key: SigningKey, now: datetime) -> bool:
    return key.retire_at is None or now < key.retire_at


def key_ring_problems(ring: KeyRing) -> list[str]:
    """What is wrong with a configured key ring, in words an operator can act on; empty when it is sound."""
    problems: list[str] = []
    keys = (ring.current, *ring.previous)
    for place, key in enumerate(keys):
        # A malformed id may be a key pasted in the wrong place: named by its position, never shown.
        well_formed = _KEY_ID.fullmatch(key.key_id) is not None
        name = (
            repr(key.key_id)
            if well_formed
            else ("the current key's id" if place == 0 else f"previous key {place}'s id")
        )
        if not well_formed:
            problems.append(
                f"{name} ({len(key.key_id)} characters) is not 1-32 characters of A-Z a-z 0-9 _ -"
            )
        if len(key.secret) < MIN_KEY_LENGTH:
            problems.append(f"key {name} must be at least {MIN_KEY_LENGTH} characters")
    if ring.current.retire_at is not None:
        problems.append("the current key has no retire time")
    if any(key.retire_at is None for key in ring.previous):
        problems.append("every previous key needs a retire_at (an ISO 8601 time with its offset)")
    if len(ring.previous) > MAX_PREVIOUS_KEYS:
        problems.append(f"at most {MAX_PREVIOUS_KEYS} previous keys")
    if len({key.key_id for key in keys}) != len(keys):
        problems.append("key ids must differ (a new key needs a new id)")
    if len({key.secret for key in keys}) != len(keys):
        problems.append("the same key appears twice")
    return problems
