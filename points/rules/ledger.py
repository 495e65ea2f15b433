"""Which lots a redemption or a reversal takes, what new points repay, how long returned points last.

Lots are handed in already ordered first-expiring first (by expiry, then id), as the ledger reads them;
these functions only decide amounts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

RETURNED_POINTS_MIN_VALIDITY = timedelta(days=30)


class OpenLot(msgspec.Struct, frozen=True):
    id: uuid.UUID
    remaining: int
    expires_at: datetime


class LotTake(msgspec.Struct, frozen=True):
    lot_id: uuid.UUID
    points: int
    expires_at: datetime


class Reversal(msgspec.Struct, frozen=True):
    takes: list[LotTake]  # taken back from lots
    owed: int  # the rest, already spent: owed by the member, repaid from future points


def take_first_expiring(lots: Sequence[OpenLot], points: int) -> list[LotTake]:
    """Up to `points` from the lots in the order given, each lot at most what it has left.

    Takes less than `points` only when the lots together hold less; never takes from an empty lot.
    """
    if points < 0:
        raise ValueError("cannot take a negative number of points")
    takes = []
    left = points
    for lot in lots:
        if left == 0:
            break
        taken = min(lot.remaining, left)
        if taken > 0:
            takes.append(LotTake(lot.id, taken, lot.expires_at))
            left -= taken
    return takes


def reverse(own: Sequence[OpenLot], others: Sequence[OpenLot], points: int) -> Reversal:
    """Take back `points` earned: from the lots they created first, then from other open lots
    first-expiring first; whatever is no longer there was spent and becomes owed."""
    takes = take_first_expiring([*own, *others], points)
    return Reversal(takes=takes, owed=points - sum(take.points for take in takes))


def repayment(owed: int, earned: int) -> int:
    """How many of newly earned points repay what the member owes: all of them, up to the debt."""
    if owed < 0 or earned < 0:
        raise ValueError("owed and earned points cannot be negative")
    return min(owed, earned)


def returned_lot_expiry(original: Sequence[LotTake], now: datetime) -> datetime:
    """Redeemed points given back by a refund last as long as the latest lot they were paid from, and at
    least 30 days: a member returning goods should not find the points expired the next day."""
    return max([take.expires_at for take in original] + [now + RETURNED_POINTS_MIN_VALIDITY])
