"""Everything one points use case changes, gathered in memory and written in one statement.

The ledger operations (points.ledger, points.miles) decide in Python and record their decisions here:
the lots they create and the points they take from lots, the entries, the accounts' totals, the miles
rows, the sale or refund rows, and the timeline events about them. `write` then applies all of it in one
round trip, as data-modifying CTEs over JSON arrays of rows (one fixed statement, prepared once per
connection, whatever the number of rows). The caller holds the locks the decisions relied on (the
members' accounts, the lots it read), so writing later in the transaction changes nothing about them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Executable, Result, text
from sqlalchemy.exc import IntegrityError

from domain.errors import DomainError
from infra.db import UnitOfWork
from points.tables import EntryKind
from timeline.recording import RECORDING, recording
from timeline.rules import EventDraft
from timeline.schemas import TimelineEntry

UNIQUE_VIOLATION = "23505"


class Account(msgspec.Struct, kw_only=True):
    """A member's `point_accounts` row, locked by this transaction (points.ledger.lock_account)."""

    member_id: uuid.UUID
    lifetime_earned: int
    lifetime_redeemed: int
    lifetime_expired: int
    owed: int


class Lot(msgspec.Struct, kw_only=True):
    """A lot as this use case sees it: read (and locked) from `point_lots`, or created by it."""

    id: uuid.UUID
    member_id: uuid.UUID
    purchase_id: uuid.UUID | None
    source: EntryKind
    earned_at: datetime
    available_at: datetime
    expires_at: datetime
    amount: int
    remaining: int

    def is_open(self, now: datetime) -> bool:
        return self.remaining > 0 and self.expires_at > now

    def is_spendable(self, now: datetime) -> bool:
        return self.is_open(now) and self.available_at <= now


class Sale(msgspec.Struct, kw_only=True):
    """A `purchases` row as a use case holds it (`lines` and `award` as stored, see points.tables)."""

    id: uuid.UUID
    store_id: uuid.UUID
    terminal_id: uuid.UUID
    receipt_id: str
    member_id: uuid.UUID | None
    sold_at: datetime
    posted_at: datetime
    currency: str
    total_minor: int
    lines: list[dict[str, Any]]
    points_redeemed: int
    points_earned: int
    miles_earned: int
    award: dict[str, Any]
    refunded_minor: int = 0
    points_reversed: int = 0
    miles_reversed: int = 0
    points_returned: int = 0


class Return(msgspec.Struct, kw_only=True):
    """A `refunds` row as a use case holds it (`lines` as stored, see points.tables)."""

    id: uuid.UUID
    purchase_id: uuid.UUID
    store_id: uuid.UUID
    terminal_id: uuid.UUID
    refund_receipt_id: str
    refunded_at: datetime
    posted_at: datetime
    amount_minor: int
    lines: list[dict[str, Any]]
    points_reversed: int
    miles_reversed: int
    points_returned: int
    points_owed: int = 0


class Changes:
    """What one use case writes; the ledger operations add to it, `write` applies it."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.accounts: dict[uuid.UUID, Account] = {}
        self._read_lots: dict[uuid.UUID, Lot] = {}
        self._read_remaining: dict[uuid.UUID, int] = {}
        self.new_lots: list[Lot] = []
        self.entries: list[dict[str, Any]] = []
        self.miles: dict[tuple[uuid.UUID, datetime], dict[str, Any]] = {}  # by (member, period start)
        self.new_purchases: list[Sale] = []
        self.purchases: list[Sale] = []
        self.refunds: list[Return] = []
        self.events: list[EventDraft] = []

    def touch(self, account: Account) -> Account:
        """Write `account`'s totals with the rest (an operation calls this for the account it changes)."""
        self.accounts[account.member_id] = account
        return account

    def read(self, lots: list[Lot]) -> list[Lot]:
        """Lots read under lock, which the operations may take points from; the same objects back."""
        for lot in lots:
            known = self._read_lots.setdefault(lot.id, lot)
            self._read_remaining.setdefault(lot.id, known.remaining)
        return [self._read_lots[lot.id] for lot in lots]

    def lots(self) -> list[Lot]:
        """Every lot known to this use case, as it now stands: read ones and created ones."""
        return [*self._read_lots.values(), *self.new_lots]

    def balance_change(self) -> tuple[int, int]:
        """How the member's (available, pending) points change with what this use case did to lots."""
        available = pending = 0
        before = [(lot, self._read_remaining[lot.id]) for lot in self._read_lots.values()]
        for lot, remaining_before in [*before, *((lot, 0) for lot in self.new_lots)]:
            if lot.expires_at <= self.now:
                continue
            change = lot.remaining - remaining_before
            if lot.available_at <= self.now:
                available += change
            else:
                pending += change
        return available, pending

    def params(self) -> dict[str, str]:
        taken = [
            {"id": lot_id, "points": self._read_remaining[lot_id] - lot.remaining}
            for lot_id, lot in self._read_lots.items()
            if lot.remaining != self._read_remaining[lot_id]
        ]
        accounts = [{**msgspec.to_builtins(a), "updated_at": self.now} for a in self.accounts.values()]
        rows = {
            "new_lots": self.new_lots,
            "taken": taken,
            "entries": self.entries,
            "accounts": accounts,
            "miles": list(self.miles.values()),
            "new_purchases": self.new_purchases,
            "purchases": self.purchases,
            "refunds": self.refunds,
        }
        return {name: _json(value) for name, value in rows.items()}

    async def write(
        self,
        uow: UnitOfWork,
        *,
        conflict: DomainError | None = None,
        along: tuple[Executable, dict[str, Any]] | None = None,
    ) -> list[TimelineEntry]:
        """Apply everything in one statement; a unique key refusing a new sale or refund raises `conflict`.

        `along`: a statement of the caller's (`WRITING`'s CTEs, then its own) and its own parameters,
        for a use case that writes rows of another capability in the same round trip (a check-in).
        """
        events = recording(self.events, self.now)
        statement, params = along or (_WRITE, {})
        await execute_unique(uow, statement, {**self.params(), **events.params, **params}, conflict)
        return events.entries


async def execute_unique(
    uow: UnitOfWork, statement: Executable, params: dict[str, Any], conflict: DomainError | None
) -> Result[Any]:
    """Execute `statement`; if a unique key refuses a row it inserts (even in a race), raise `conflict`."""
    try:
        return await uow.session.execute(statement, params)
    except IntegrityError as error:
        if conflict is not None and getattr(error.orig, "sqlstate", None) == UNIQUE_VIOLATION:
            raise conflict from error
        raise


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


def rows_sql(table: str, param: str) -> str:
    """SQL: the rows of `table` given as a JSON array in parameter `param` (their keys are its columns)."""
    return f"jsonb_populate_recordset(NULL::{table}, CAST(:{param} AS jsonb))"


def keys_sql(param: str, key: str) -> str:
    """SQL: the `key` (a uuid) of each row of the JSON array in parameter `param`, as an array.

    An UPDATE joined to a JSON array alone gets a hash join over the whole table below some tens of
    thousands of rows (PostgreSQL estimates the array at 100 rows, whatever it holds); also matching
    `= ANY` of this array, the planner looks up the few keys (tests/integration/test_write_plans.py)."""
    rows = f"jsonb_array_elements(CAST(:{param} AS jsonb))"
    return f"ARRAY(SELECT CAST(item ->> '{key}' AS uuid) FROM {rows} AS item)"  # noqa: S608 - constant SQL


# Lots taken from get their remaining lowered by what was taken (never set from a stale copy); the
# account's totals, the miles rows and the sale are written as the operations left them. `WRITING` is
# the CTEs of `write`'s statement, for a statement that writes rows of its own after them (`along`).
WRITING = f"""
new_lots AS (INSERT INTO point_lots SELECT * FROM {rows_sql("point_lots", "new_lots")}),
taken_lots AS (
    UPDATE point_lots AS lot SET remaining = lot.remaining - taken.points
    FROM jsonb_to_recordset(CAST(:taken AS jsonb)) AS taken(id uuid, points bigint)
    WHERE lot.id = taken.id AND lot.id = ANY({keys_sql("taken", "id")})
),
entries AS (INSERT INTO point_entries SELECT * FROM {rows_sql("point_entries", "entries")}),
accounts AS (
    UPDATE point_accounts AS account
    SET lifetime_earned = totals.lifetime_earned, lifetime_redeemed = totals.lifetime_redeemed,
        lifetime_expired = totals.lifetime_expired, owed = totals.owed, updated_at = totals.updated_at
    FROM {rows_sql("point_accounts", "accounts")} AS totals
    WHERE account.member_id = totals.member_id
        AND account.member_id = ANY({keys_sql("accounts", "member_id")})
),
miles AS (
    INSERT INTO member_miles SELECT * FROM {rows_sql("member_miles", "miles")}
    ON CONFLICT (member_id, period_start)
    DO UPDATE SET miles = excluded.miles, bonus_stages = excluded.bonus_stages
),
new_purchases AS (INSERT INTO purchases SELECT * FROM {rows_sql("purchases", "new_purchases")}),
purchases AS (
    UPDATE purchases AS sale
    SET lines = changed.lines, points_earned = changed.points_earned, award = changed.award,
        refunded_minor = changed.refunded_minor, points_reversed = changed.points_reversed,
        miles_reversed = changed.miles_reversed, points_returned = changed.points_returned
    FROM {rows_sql("purchases", "purchases")} AS changed
    WHERE sale.id = changed.id AND sale.id = ANY({keys_sql("purchases", "id")})
),
refunds AS (INSERT INTO refunds SELECT * FROM {rows_sql("refunds", "refunds")}),
{RECORDING}"""  # noqa: S608 - constant SQL; values are bound
_WRITE = text(f"WITH {WRITING}\nSELECT 1")
