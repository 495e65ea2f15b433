"""Awarding a check-in: the points and miles of a rewarded visit, within the check-in's own statements.

geofence judges a check-in under the member's check-in lock, then asks for its award. So that a
check-in takes as few round trips as a sale (points.sales), the award has no statement of its own: the
member's account is locked by the statement that takes the check-in lock (`lock_account_sql`), the
miles period is read with what geofence reads about the member after it (`PERIOD_SQL`), and the award
goes into a `Changes` that the check-in writes with its own rows (`Changes.write(along=...)`).
"""

from __future__ import annotations

from datetime import datetime

from infra.db import UnitOfWork
from points import ledger
from points.changes import Account, Changes
from points.miles import move_miles, periods_of, periods_sql
from points.program import Program
from points.rules.stages import period_start
from points.tables import EntryKind

# The miles period a check-in counts in, as `award_check_in` takes it (a JSON array of at most one
# `member_miles` row; parameters :member_id and :period_start, see `period_params`).
PERIOD_SQL = periods_sql(":member_id", "ARRAY[CAST(:period_start AS timestamptz)]")


def lock_account_sql(after: str) -> str:
    """SQL: a CTE body that creates (if missing) and locks the account of the member :member_id once the
    CTE `after` yields its row (so a lock taken there is held first), returning the account's totals
    (`points.ledger.account_of`). Parameter :now."""
    return ledger.lock_account_sql(after, "CAST(:member_id AS uuid)")


def period_params(program: Program, earned_at: datetime) -> dict[str, datetime]:
    """`PERIOD_SQL`'s parameter for a check-in at `earned_at` (besides :member_id)."""
    return {"period_start": period_start(earned_at, program.stages)}


async def award_check_in(
    uow: UnitOfWork,
    changes: Changes,
    program: Program,
    account: Account,
    period_rows: object,
    *,
    points: int,
    miles: int,
    store_name: str,
    earned_at: datetime,
) -> None:
    """Add a check-in's points (spendable at once) and miles, and the stage bonus they reach, to `changes`.

    The caller holds `account` (`lock_account_sql`) and read `period_rows` (`PERIOD_SQL`) after it.
    """
    if points:
        ledger.add_earning(
            changes,
            account,
            points,
            kind=EntryKind.EARN,
            reason=f"Check-in at {store_name}",
            earned_at=earned_at,
            available_at=earned_at,
            expires_at=program.expires_at(earned_at),
            miles=miles,
        )
    start = period_start(earned_at, program.stages)
    period = periods_of(account.member_id, period_rows, [start])[start]
    await move_miles(uow, changes, program, account, period, miles)
