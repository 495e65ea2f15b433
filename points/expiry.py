"""Jobs on the ledger: expiring lots past their date, forgetting spent member codes. Safe to rerun."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, select

from domain.interactions import Channel, InteractionKind
from infra.db import Database
from points import ledger
from points.tables import EntryKind, MemberCodeUse, PointEntry, PointLot
from timeline.recording import record_many
from timeline.rules import EventDraft

MEMBERS_PER_BATCH = 200


async def expire_due(db: Database, now: datetime) -> int:
    """Expire every lot with `expires_at <= now` and points left; returns the points expired.

    Batches of members, each in its own transaction with the members' accounts locked, so expiry
    never races a redemption; an expired lot has nothing left, so a rerun finds nothing to do.
    """
    total = 0
    while True:
        async with db.unit_of_work() as uow:
            member_ids = list(
                (
                    await uow.session.execute(
                        select(PointLot.member_id)
                        .where(PointLot.remaining > 0, PointLot.expires_at <= now)
                        .group_by(PointLot.member_id)
                        .order_by(PointLot.member_id)
                        .limit(MEMBERS_PER_BATCH)
                    )
                ).scalars()
            )
            if not member_ids:
                return total
            expired: dict[UUID, int] = defaultdict(int)
            for member_id in member_ids:
                account = await ledger.lock_account(uow, member_id, now)
                lots = (
                    await uow.session.execute(
                        select(PointLot)
                        .where(
                            PointLot.member_id == member_id,
                            PointLot.remaining > 0,
                            PointLot.expires_at <= now,
                        )
                        .with_for_update()
                    )
                ).scalars()
                for lot in lots:
                    uow.session.add(
                        PointEntry(
                            member_id=member_id,
                            kind=EntryKind.EXPIRE,
                            points=-lot.remaining,
                            lot_id=lot.id,
                            reason=f"{lot.remaining} points earned {lot.earned_at:%Y-%m-%d} expired",
                            occurred_at=lot.expires_at,
                            recorded_at=now,
                        )
                    )
                    expired[member_id] += lot.remaining
                    account.lifetime_expired += lot.remaining
                    lot.remaining = 0
            await record_many(
                uow,
                [
                    EventDraft(
                        member_id=member_id,
                        kind=InteractionKind.POINTS_EXPIRED,
                        occurred_at=now,
                        channel=Channel.SYSTEM,
                        properties={"points": points},
                    )
                    for member_id, points in expired.items()
                ],
                now,
            )
            total += sum(expired.values())


async def purge_code_uses(db: Database, now: datetime) -> int:
    """Forget member codes whose validity window has passed (they can no longer be scanned anyway)."""
    async with db.unit_of_work() as uow:
        result = await uow.session.execute(delete(MemberCodeUse).where(MemberCodeUse.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)
