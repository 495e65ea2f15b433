"""Jobs on the ledger: expiring lots past their date, forgetting spent member codes. Safe to rerun."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, text

from domain.interactions import Channel, InteractionKind
from infra.db import Database
from points import holdings, ledger
from points.changes import Changes
from points.tables import MemberCodeUse, PointLot
from timeline.rules import EventDraft

MEMBERS_PER_BATCH = 200


_EXPIRING_LOTS = text(
    f"SELECT {holdings.lots_sql('member_id = :member_id AND remaining > 0 AND expires_at <= :now')}"
)


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
            changes = Changes(now)
            for member_id in member_ids:
                account = await ledger.lock_account(uow, member_id, now)
                lots = (
                    await uow.session.execute(_EXPIRING_LOTS, {"member_id": member_id, "now": now})
                ).scalar_one()
                points = ledger.expire(changes, account, holdings.lots_of(lots))
                if points:
                    changes.events.append(
                        EventDraft(
                            member_id=member_id,
                            kind=InteractionKind.POINTS_EXPIRED,
                            occurred_at=now,
                            channel=Channel.SYSTEM,
                            properties={"points": points},
                        )
                    )
                total += points
            await changes.write(uow)


async def purge_code_uses(db: Database, now: datetime) -> int:
    """Forget member codes whose validity window has passed (they can no longer be scanned anyway)."""
    async with db.unit_of_work() as uow:
        result = await uow.session.execute(delete(MemberCodeUse).where(MemberCodeUse.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)
