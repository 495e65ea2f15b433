"""Who is held back to measure a campaign, and which variant the others get: stable per member.

A member's bucket (0-9,999) is a hash of the member and a salt, so the same member always falls the same
way for one purpose and independently for another: the global control group (kept out of every
campaign, to measure what push achieves at all), a campaign's own control group, and its A/B variant.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

BUCKETS = 10_000
GLOBAL_CONTROL_SALT = "tsunagari-global-control-v1"


def bucket(member_id: uuid.UUID, salt: str) -> int:
    digest = hashlib.sha256(salt.encode() + b"\x00" + member_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_global_control(member_id: uuid.UUID, percent: int) -> bool:
    return bucket(member_id, GLOBAL_CONTROL_SALT) < percent * BUCKETS // 100


def in_campaign_control(member_id: uuid.UUID, campaign_id: uuid.UUID, percent: int) -> bool:
    return bucket(member_id, f"control:{campaign_id}") < percent * BUCKETS // 100


def pick_variant(member_id: uuid.UUID, campaign_id: uuid.UUID, weights: Sequence[tuple[str, int]]) -> str:
    """The variant for the member, in proportion to the variants' weights."""
    total = sum(weight for _, weight in weights)
    if total <= 0:
        raise ValueError("variant weights must add up to more than zero")
    point = bucket(member_id, f"variant:{campaign_id}") * total // BUCKETS
    cumulative = 0
    for key, weight in weights:
        cumulative += weight
        if point < cumulative:
            return key
    return weights[-1][0]
