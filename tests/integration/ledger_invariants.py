"""What must hold of a member's ledger whatever happened to it: the ledger audit (points.audit) of the
member, and what the app shows against what the lots hold.

Each check returns the broken invariants as readable lines (empty when all hold), so a test that races
purchases, returns, expiry and check-ins against each other can say exactly what the race broke.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from infra.db import Database
from points.audit import audit_members
from points.program import load_program
from tests.conftest import TEST_PROGRAM

# Tests move the clock years back and forth; every event they record is still in the timeline.
_WHOLE_TIMELINE = datetime(1970, 1, 1, tzinfo=UTC)
_STAGES = load_program(TEST_PROGRAM.decode()).stages

_LOTS = text(
    """
    SELECT coalesce(sum(remaining) FILTER (WHERE expires_at > :now AND available_at <= :now), 0) AS available,
           coalesce(sum(remaining) FILTER (WHERE expires_at > :now AND available_at > :now), 0) AS pending,
           count(*) FILTER (WHERE remaining > 0 AND expires_at <= :now) AS due_for_expiry
    FROM point_lots WHERE member_id = :member_id
    """
)
_PERIODS = text("SELECT miles, bonus_stages FROM member_miles WHERE member_id = :member_id")


async def broken_invariants(
    db: Database,
    member_id: uuid.UUID | str,
    now: datetime,
    *,
    shown: tuple[int, int] | None = None,
    silver_at: int | None = None,
) -> list[str]:
    """Every invariant of the member's points, lots, entries, miles, sales and their timeline events that
    does not hold now. `shown`: the (available, pending) points the app shows, which the lots must hold;
    `silver_at`: the miles of the stage whose bonus a period must hold exactly when its miles reach them
    (None: not checked). Run expiry first: lots past their date must be expired."""
    member = uuid.UUID(str(member_id))
    params = {"member_id": member, "now": now}
    async with db.unit_of_work() as uow:
        violations = await audit_members(uow, [member], _WHOLE_TIMELINE, _STAGES)
        lots = (await uow.session.execute(_LOTS, params)).one()
        periods = (await uow.session.execute(_PERIODS, params)).all()
    broken = [f"{violation.invariant}: {violation.detail}" for violation in violations]
    if shown is not None and shown != (int(lots.available), int(lots.pending)):
        broken.append(f"the app shows {shown} (available, pending); lots hold {lots.available, lots.pending}")
    if lots.due_for_expiry:
        broken.append(f"{lots.due_for_expiry} lots past their date still hold points (expiry not run?)")
    if silver_at is not None:
        for period in periods:
            if (period.miles >= silver_at) != ("silver" in period.bonus_stages):
                broken.append(f"a period with {period.miles} miles holds bonuses {period.bonus_stages}")
    return broken
