"""The ledger audit (`tsunagari points audit`): every invariant of the points ledger, checked from the
tables as they stand, with the member and the rows of each violation.

The use cases keep these invariants by construction (points.changes writes a use case's rows in one
statement); the audit is how an operator, a fault-injection test or a restore drill proves they held.
It reads members in batches by id (a few statements per batch, each bounded to the batch's members),
so its memory does not grow with the ledger, and it streams what it finds. Anonymous sales have no
ledger; their refunds and timeline events are checked in a second pass, in batches of sales.

What is checked, per member:
- `lot_within_amount`: no lot holds less than 0 or more than it was created with;
- `entries_match_lots`: the entries' points add up to what the lots still hold (the balances the app
  shows are read from the lots);
- `account_matches_entries`: the account's lifetime earned, redeemed and expired points and what it
  owes are what its entries say (owed: reversals not yet repaid);
- `sale_matches_entries`: each sale's earned, redeemed, reversed and returned points are its entries'
  (exactly one earn entry when it earned points, none otherwise);
- `sale_matches_refunds`: a sale's refunded amount and points are its refunds' totals, and no refund
  takes back more than the sale earned or gave back more than it redeemed;
- `miles_match_facts`: the miles held in the member's periods are those of their sales, returns and
  check-ins;
- `stage_bonuses_match_miles`: each period holds exactly the bonuses of the thresholds its miles reach
  (under the program's current thresholds: a period from before a change of them may be reported);
- `fact_has_its_event`: each sale, refund and check-in since `events_since` has its event, on the
  member's timeline (erasing a member empties their events' properties, so theirs are not checked).

Each check is one statement, so a database that changes meanwhile cannot make one disagree with itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import TextClause, text

from infra.db import Database, UnitOfWork
from points.rules.stages import Stage, StagePolicy, bonus_changes

MEMBERS_PER_BATCH = 1_000


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One broken invariant: whose (None: an anonymous sale), which, and the rows that show it."""

    member_id: uuid.UUID | None
    invariant: str
    detail: str
    rows: dict[str, Any] = {}


class AuditSummary(msgspec.Struct, kw_only=True):
    members: int = 0
    anonymous_sales: int = 0
    violations: int = 0


_MEMBER_IDS = text("SELECT id FROM members WHERE id > :after ORDER BY id LIMIT :size")
# Lots below zero: the table's constraint refuses them, so they can only come from a restore or a hand
# edit that bypassed it; one scan of all lots per audit rather than one per batch.
_NEGATIVE_LOTS = text(
    "SELECT member_id, array_agg(id ORDER BY id) AS lots FROM point_lots WHERE remaining < 0"
    " GROUP BY member_id"
)
# The batch statements' row estimates (a parameter array, grouped joins) are far off, enough to make
# PostgreSQL compile them (JIT) at a cost of a second a batch, more than they take to run.
_NO_JIT = text("SET LOCAL jit = off")
_ANONYMOUS_SALE_IDS = text(
    "SELECT id FROM purchases WHERE member_id IS NULL AND id > :after ORDER BY id LIMIT :size"
)

_LEDGERS = text(
    """
    WITH batch AS (SELECT unnest(CAST(:ids AS uuid[])) AS member_id),
    lots AS (
        SELECT member_id, sum(remaining) AS remaining,
               (array_agg(id ORDER BY id) FILTER (WHERE remaining > amount))[1:10] AS out_of_bounds
        FROM point_lots
        WHERE member_id = ANY(CAST(:ids AS uuid[])) AND remaining > 0  -- the open lots' index
        GROUP BY member_id
    ),
    entries AS (
        SELECT member_id, sum(points) AS points, sum(owed_change) AS owed,
               coalesce(sum(points) FILTER (WHERE kind IN ('earn', 'bonus', 'reverse')), 0)
                   - coalesce(sum(owed_change) FILTER (WHERE kind = 'owed'), 0) AS earned,
               -coalesce(sum(points) FILTER (WHERE kind IN ('redeem', 'return')), 0) AS redeemed,
               -coalesce(sum(points) FILTER (WHERE kind = 'expire'), 0) AS expired
        FROM point_entries WHERE member_id = ANY(CAST(:ids AS uuid[])) GROUP BY member_id
    ),
    miles AS (
        SELECT member_id, sum(miles) AS held FROM member_miles
        WHERE member_id = ANY(CAST(:ids AS uuid[])) GROUP BY member_id
    ),
    sold AS (
        SELECT member_id, sum(miles_earned - miles_reversed) AS miles FROM purchases
        WHERE member_id = ANY(CAST(:ids AS uuid[])) GROUP BY member_id
    ),
    visited AS (
        SELECT member_id, sum(miles) AS miles FROM check_ins
        WHERE member_id = ANY(CAST(:ids AS uuid[])) GROUP BY member_id
    )
    SELECT batch.member_id, lots.out_of_bounds,
           coalesce(lots.remaining, 0) AS lots_hold, coalesce(entries.points, 0) AS entries_hold,
           coalesce(account.lifetime_earned, 0) AS account_earned, coalesce(entries.earned, 0) AS earned,
           coalesce(account.lifetime_redeemed, 0) AS account_redeemed,
           coalesce(entries.redeemed, 0) AS redeemed,
           coalesce(account.lifetime_expired, 0) AS account_expired, coalesce(entries.expired, 0) AS expired,
           coalesce(account.owed, 0) AS account_owed, coalesce(entries.owed, 0) AS owed,
           coalesce(miles.held, 0) AS miles_held,
           coalesce(sold.miles, 0) + coalesce(visited.miles, 0) AS miles_earned
    FROM batch
    LEFT JOIN lots USING (member_id)
    LEFT JOIN entries USING (member_id)
    LEFT JOIN point_accounts AS account USING (member_id)
    LEFT JOIN miles USING (member_id)
    LEFT JOIN sold USING (member_id)
    LEFT JOIN visited USING (member_id)
    """
)

_PERIODS = text(
    "SELECT member_id, period_start, miles, bonus_stages FROM member_miles"
    " WHERE member_id = ANY(CAST(:ids AS uuid[]))"
)

# A sale with what its entries and its refunds add up to (Python says how they disagree).
_SALES = """
    SELECT sale.member_id, sale.id, sale.receipt_id, sale.total_minor, sale.points_earned,
           sale.points_redeemed, sale.refunded_minor, sale.points_reversed, sale.points_returned,
           sale.miles_reversed, entry.earn_entries, entry.earned, entry.redeemed, entry.reversed,
           entry.returned, refund.refunds, refund.amount, refund.points_reversed AS refunds_reversed,
           refund.points_returned AS refunds_returned, refund.miles_reversed AS refunds_miles
    FROM purchases AS sale
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE kind = 'earn') AS earn_entries,
               coalesce(sum(points) FILTER (WHERE kind = 'earn'), 0) AS earned,
               -coalesce(sum(points) FILTER (WHERE kind = 'redeem'), 0) AS redeemed,
               -coalesce(sum(points) FILTER (WHERE kind = 'reverse'), 0)
                   + coalesce(sum(owed_change) FILTER (WHERE kind = 'owed'), 0) AS reversed,
               coalesce(sum(points) FILTER (WHERE kind = 'return'), 0) AS returned
        FROM point_entries WHERE purchase_id = sale.id
    ) AS entry
    CROSS JOIN LATERAL (
        SELECT count(*) AS refunds, coalesce(sum(amount_minor), 0) AS amount,
               coalesce(sum(points_reversed), 0) AS points_reversed,
               coalesce(sum(points_returned), 0) AS points_returned,
               coalesce(sum(miles_reversed), 0) AS miles_reversed
        FROM refunds WHERE purchase_id = sale.id
    ) AS refund
"""
# Only the sales that disagree come back to Python: a batch holds however many sales its members made.
_DISAGREES = """
    (member_id IS NOT NULL AND (points_earned <> earned OR points_redeemed <> redeemed
        OR points_reversed <> reversed OR points_returned <> returned
        OR earn_entries <> CASE WHEN points_earned > 0 THEN 1 ELSE 0 END))
    OR refunded_minor <> amount OR points_reversed <> refunds_reversed
    OR points_returned <> refunds_returned OR miles_reversed <> refunds_miles
    OR refunded_minor > total_minor OR points_reversed > points_earned OR points_returned > points_redeemed
"""


def _sales_disagreeing(which: str) -> TextClause:
    return text(f"SELECT * FROM ({_SALES} WHERE {which}) AS totals WHERE {_DISAGREES}")  # noqa: S608 - constant SQL


_MEMBERS_SALES = _sales_disagreeing("sale.member_id = ANY(CAST(:ids AS uuid[]))")
_SALES_BY_ID = _sales_disagreeing("sale.id = ANY(CAST(:ids AS uuid[]))")

# The batch's members whose events keep their content: erasing a member empties their events'
# properties, so theirs are not checked (read in the events' own statement, so an erasure committed
# meanwhile cannot make a false alarm).
_KEPT = "SELECT id FROM members WHERE id = ANY(CAST(:ids AS uuid[])) AND erased_at IS NULL"

# Facts since `since` whose timeline event is missing (or, for a sale or check-in, not exactly one).
# Events are matched on what their recording wrote: the fact's time, store, kind and subject.
_MISSING_EVENTS = """
    SELECT sale.member_id, 'sale' AS fact, sale.receipt_id AS ref, count(event.id) AS events
    FROM purchases AS sale
    LEFT JOIN timeline_events AS event
        ON event.store_id = sale.store_id AND event.occurred_at = sale.sold_at
       AND event.kind = 'purchased' AND event.subject_ref = CAST(sale.id AS text)
       AND event.member_id IS NOT DISTINCT FROM sale.member_id
    WHERE {sales} AND sale.sold_at >= :since
    GROUP BY sale.id HAVING count(event.id) <> 1
    UNION ALL
    SELECT sale.member_id, 'refund', refund.refund_receipt_id, count(event.id)
    FROM refunds AS refund JOIN purchases AS sale ON sale.id = refund.purchase_id
    LEFT JOIN timeline_events AS event
        ON event.store_id = sale.store_id AND event.occurred_at = refund.refunded_at
       AND event.kind = 'refunded' AND event.subject_ref = CAST(sale.id AS text)
       AND event.member_id IS NOT DISTINCT FROM sale.member_id
       AND event.properties ->> 'amount_minor' = CAST(refund.amount_minor AS text)
    WHERE {sales} AND refund.refunded_at >= :since
    GROUP BY refund.id, sale.member_id HAVING count(event.id) < 1
"""
_MEMBERS_MISSING_EVENTS = text(
    _MISSING_EVENTS.format(sales=f"sale.member_id IN ({_KEPT})")  # noqa: S608 - constant SQL
    + f"""
    UNION ALL
    SELECT visit.member_id, 'check-in', CAST(visit.id AS text), count(event.id)
    FROM check_ins AS visit
    LEFT JOIN timeline_events AS event
        ON event.member_id = visit.member_id AND event.occurred_at = visit.fix_at
       AND event.kind = 'checked_in' AND event.store_id = visit.store_id
    WHERE visit.member_id IN ({_KEPT}) AND visit.fix_at >= :since
    GROUP BY visit.id HAVING count(event.id) <> 1
    """  # noqa: S608 - constant SQL
)
_ANONYMOUS_MISSING_EVENTS = text(_MISSING_EVENTS.format(sales="sale.id = ANY(CAST(:ids AS uuid[]))"))


async def audit_ledger(
    db: Database,
    events_since: datetime,
    stages: StagePolicy,
    summary: AuditSummary,
    batch: int = MEMBERS_PER_BATCH,
) -> AsyncIterator[Violation]:
    """Every violation, member batch after member batch, then anonymous sales; counts go to `summary`.

    `events_since`: the oldest time the timeline still holds (its retention); facts before it are not
    required to have their events."""
    async with db.unit_of_work() as uow:
        negative = (await uow.session.execute(_NEGATIVE_LOTS)).all()
    for row in negative:
        summary.violations += 1
        yield Violation(
            member_id=row.member_id,
            invariant="lot_within_amount",
            detail=f"{len(row.lots)} lots hold fewer than 0 points",
            rows={"lots": [str(lot) for lot in row.lots[:10]]},
        )
    after = uuid.UUID(int=0)
    while ids := await _next_ids(db, _MEMBER_IDS, after, batch):
        summary.members += len(ids)
        after = ids[-1]
        async with db.unit_of_work() as uow:
            found = await audit_members(uow, ids, events_since, stages)
        for violation in found:
            summary.violations += 1
            yield violation
    after = uuid.UUID(int=0)
    while ids := await _next_ids(db, _ANONYMOUS_SALE_IDS, after, batch):
        summary.anonymous_sales += len(ids)
        after = ids[-1]
        async with db.unit_of_work() as uow:
            await uow.session.execute(_NO_JIT)
            sales = (await uow.session.execute(_SALES_BY_ID, {"ids": ids})).all()
            missing = (
                await uow.session.execute(_ANONYMOUS_MISSING_EVENTS, {"ids": ids, "since": events_since})
            ).all()
        for violation in [*_sale_violations(sales), *_event_violations(missing)]:
            summary.violations += 1
            yield violation


async def audit_members(
    uow: UnitOfWork, member_ids: Sequence[uuid.UUID], events_since: datetime, stages: StagePolicy
) -> list[Violation]:
    """The violations of these members' ledgers (what `audit_ledger` checks of each batch), as the
    transaction of `uow` sees them; `stages`: the program's, whose bonuses the periods must hold."""
    params = {"ids": list(member_ids)}
    await uow.session.execute(_NO_JIT)
    ledgers = (await uow.session.execute(_LEDGERS, params)).all()
    periods = (await uow.session.execute(_PERIODS, params)).all()
    sales = (await uow.session.execute(_MEMBERS_SALES, params)).all()
    missing = (await uow.session.execute(_MEMBERS_MISSING_EVENTS, {**params, "since": events_since})).all()
    return [
        *_ledger_violations(ledgers),
        *_period_violations(periods, stages),
        *_sale_violations(sales),
        *_event_violations(missing),
    ]


async def _next_ids(db: Database, query: TextClause, after: uuid.UUID, size: int) -> list[uuid.UUID]:
    async with db.unit_of_work() as uow:
        return list((await uow.session.execute(query, {"after": after, "size": size})).scalars())


def _ledger_violations(rows: Sequence[Any]) -> list[Violation]:
    return [violation for row in rows for violation in _member_violations(row)]


def _member_violations(row: Any) -> list[Violation]:
    found: list[Violation] = []

    def broken(invariant: str, detail: str, **shown: Any) -> None:
        found.append(Violation(member_id=row.member_id, invariant=invariant, detail=detail, rows=shown))

    if row.out_of_bounds:
        broken(
            "lot_within_amount", "lots hold more points than they were created with", lots=row.out_of_bounds
        )
    if row.entries_hold != row.lots_hold:
        broken(
            "entries_match_lots",
            f"entries add up to {row.entries_hold} points, lots hold {row.lots_hold}",
            entries=row.entries_hold,
            lots=row.lots_hold,
        )
    totals = {
        "lifetime_earned": (row.account_earned, row.earned),
        "lifetime_redeemed": (row.account_redeemed, row.redeemed),
        "lifetime_expired": (row.account_expired, row.expired),
        "owed": (row.account_owed, row.owed),
    }
    wrong = {name: pair for name, pair in totals.items() if pair[0] != pair[1]}
    if wrong:
        broken(
            "account_matches_entries",
            "; ".join(f"{name} is {kept}, entries say {entries}" for name, (kept, entries) in wrong.items()),
            account={name: kept for name, (kept, _) in wrong.items()},
            entries={name: entries for name, (_, entries) in wrong.items()},
        )
    if row.miles_held != row.miles_earned:
        broken(
            "miles_match_facts",
            f"periods hold {row.miles_held} miles; sales, returns and check-ins say {row.miles_earned}",
            held=row.miles_held,
            earned=row.miles_earned,
        )
    return found


def _period_violations(rows: Sequence[Any], stages: StagePolicy) -> list[Violation]:
    """A period holds exactly the bonuses of the thresholds its miles reach (points.rules.stages)."""
    found = []
    for period in rows:
        changes = bonus_changes(period.miles, [Stage(held) for held in period.bonus_stages], stages)
        if changes.grant or changes.take_back:
            found.append(
                Violation(
                    member_id=period.member_id,
                    invariant="stage_bonuses_match_miles",
                    detail=(
                        f"the period from {period.period_start:%Y-%m-%d} holds {period.miles} miles and the "
                        f"bonuses of {sorted(period.bonus_stages)}: missing "
                        f"{[t.stage.value for t in changes.grant]}, "
                        f"not reached {[stage.value for stage in changes.take_back]}"
                    ),
                    rows={"period_start": period.period_start.isoformat(), "miles": period.miles},
                )
            )
    return found


def _sale_violations(rows: Sequence[Any]) -> list[Violation]:
    found: list[Violation] = []
    for sale in rows:
        shown = {"sale_id": str(sale.id), "receipt_id": sale.receipt_id}
        if sale.member_id is not None:
            expected = {
                "earned": (sale.points_earned, sale.earned),
                "redeemed": (sale.points_redeemed, sale.redeemed),
                "reversed": (sale.points_reversed, sale.reversed),
                "returned": (sale.points_returned, sale.returned),
                "earn entries": (1 if sale.points_earned else 0, sale.earn_entries),
            }
            wrong = {name: pair for name, pair in expected.items() if pair[0] != pair[1]}
            if wrong:
                detail = "; ".join(
                    f"{name}: sale {kept}, entries {entries}" for name, (kept, entries) in wrong.items()
                )
                found.append(
                    Violation(
                        member_id=sale.member_id,
                        invariant="sale_matches_entries",
                        detail=f"receipt {sale.receipt_id}: {detail}",
                        rows=shown,
                    )
                )
        totals = {
            "refunded": (sale.refunded_minor, sale.amount),
            "points reversed": (sale.points_reversed, sale.refunds_reversed),
            "points returned": (sale.points_returned, sale.refunds_returned),
            "miles reversed": (sale.miles_reversed, sale.refunds_miles),
        }
        problems = [
            f"{name}: sale {kept}, refunds {refunds}"
            for name, (kept, refunds) in totals.items()
            if kept != refunds
        ]
        if sale.refunded_minor > sale.total_minor:
            problems.append(f"refunded {sale.refunded_minor} of a {sale.total_minor} sale")
        if sale.points_reversed > sale.points_earned:
            problems.append(f"reversed {sale.points_reversed} of {sale.points_earned} points earned")
        if sale.points_returned > sale.points_redeemed:
            problems.append(f"returned {sale.points_returned} of {sale.points_redeemed} points redeemed")
        if problems:
            found.append(
                Violation(
                    member_id=sale.member_id,
                    invariant="sale_matches_refunds",
                    detail=f"receipt {sale.receipt_id} ({sale.refunds} refunds): " + "; ".join(problems),
                    rows=shown,
                )
            )
    return found


def _event_violations(rows: Sequence[Any]) -> list[Violation]:
    return [
        Violation(
            member_id=row.member_id,
            invariant="fact_has_its_event",
            detail=f"{row.fact} {row.ref} has {row.events} timeline events",
            rows={"fact": row.fact, "ref": row.ref, "events": row.events},
        )
        for row in rows
    ]
