"""The ledger audit (points.audit, `tsunagari points audit`): silent on a ledger the use cases wrote,
and each invariant, broken by hand, reported with its member and rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import text

from domain.clock import SettableClock
from infra.db import Database, UnitOfWork
from infra.settings import Settings
from points import audit
from points.audit import AuditSummary, audit_ledger, audit_members
from points.expiry import expire_due
from points.program import load_program
from tests.conftest import TEST_PROGRAM
from tests.integration.factories import PASSWORD, TerminalCredentials, bearer
from tests.integration.register import (
    check_in_at_ginza,
    days_ago,
    log_in_again,
    pos,
    posted,
    refund,
    sale,
    shopper,
)
from tests.integration.test_cli import tsunagari

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"
WHOLE_TIMELINE = datetime(1970, 1, 1, tzinfo=UTC)
LOTS_CONSTRAINT = "ck_point_lots_remaining_within_amount"
STAGES = load_program(TEST_PROGRAM.decode()).stages


async def a_year_at_the_register(
    client: httpx.AsyncClient, clock: SettableClock, till: TerminalCredentials, db: Database
) -> list[uuid.UUID]:
    """Three members' year: sales, a partial return, expiry, redemptions, a return of a sale whose points
    were spent (so the member owes them), check-ins, and an anonymous sale and its return."""
    members = [await shopper(client) for _ in range(3)]
    first = members[0]
    then = clock.now()
    old = [
        posted(await pos(client, clock, till, PURCHASES, sale(4_000, at=then, code=first.code(then))))
        for _ in range(2)
    ]
    posted(await pos(client, clock, till, REFUNDS, refund(old[0]["receipt_id"], then, amount_minor=1_000)))
    clock.advance(timedelta(days=370))  # the old sales' points are past their date
    assert await expire_due(db, clock.now()) > 0
    now = clock.now()
    for n, member in enumerate(members):
        phone = await log_in_again(client, member)
        earlier = days_ago(now, 3)  # available by now
        bought = posted(
            await pos(client, clock, till, PURCHASES, sale(6_000, at=earlier, code=phone.code(now)))
        )
        posted(await pos(client, clock, till, PURCHASES, sale(2_000, at=earlier, code=phone.code(now))))
        if n == 1:
            posted(
                await pos(
                    client, clock, till, PURCHASES, sale(1_000, at=now, code=phone.code(now), redeem=50)
                )
            )
        if n == 2:  # spend the sale's points, then return it
            posted(
                await pos(client, clock, till, PURCHASES, sale(500, at=now, code=phone.code(now), redeem=80))
            )
            returned = posted(
                await pos(client, clock, till, REFUNDS, refund(bought["receipt_id"], now, amount_minor=6_000))
            )
            assert returned["points_owed"] > 0, returned
        checked_in = await check_in_at_ginza(client, phone, till.store_id, clock)
        assert checked_in.status_code == 200, checked_in.text
    anonymous = posted(await pos(client, clock, till, PURCHASES, sale(3_000, at=now)))
    posted(await pos(client, clock, till, REFUNDS, refund(anonymous["receipt_id"], now, amount_minor=1_500)))
    return [uuid.UUID(member.session["member"]["id"]) for member in members]


async def test_a_ledger_the_use_cases_wrote_passes_the_audit_batch_after_batch(
    client: httpx.AsyncClient, clock: SettableClock, terminal: TerminalCredentials, db: Database
) -> None:
    members = await a_year_at_the_register(client, clock, terminal, db)
    summary = AuditSummary()
    found = [
        v async for v in audit_ledger(db, WHOLE_TIMELINE, STAGES, summary, batch=2)
    ]  # two batches of members
    assert found == []
    assert (summary.members, summary.anonymous_sales, summary.violations) == (len(members), 1, 0)


# Each breaks one invariant of a member's ledger, the way a bad restore, a hand edit or a bug would: of
# the third member's (a return, a redemption, points owed, a check-in and its events), or, for the lots,
# of the second's (the third holds no points: the return took back what was left).
THE_SECOND = {"lot_within_amount", "entries_match_lots"}
BREAKS = {
    "lot_within_amount": [
        f"ALTER TABLE point_lots DROP CONSTRAINT {LOTS_CONSTRAINT}",
        # The lot holds what the entries say, but more than it was created with.
        "UPDATE point_lots SET amount = remaining - 5 WHERE id = "
        "(SELECT id FROM point_lots WHERE member_id = :member AND remaining > 5 ORDER BY id LIMIT 1)",
    ],
    "entries_match_lots": [
        "UPDATE point_lots SET remaining = remaining - 1 WHERE id = "
        "(SELECT id FROM point_lots WHERE member_id = :member AND remaining > 0 ORDER BY id LIMIT 1)"
    ],
    "account_matches_entries": [
        "UPDATE point_accounts SET owed = owed + 7 WHERE member_id = :member",
    ],
    "sale_matches_entries": [
        "UPDATE purchases SET points_redeemed = points_redeemed + 1 WHERE member_id = :member"
        " AND points_redeemed > 0",
    ],
    "sale_matches_refunds": [
        "UPDATE purchases SET refunded_minor = refunded_minor - 1 WHERE member_id = :member"
        " AND refunded_minor > 0",
    ],
    "miles_match_facts": ["UPDATE member_miles SET miles = miles + 3 WHERE member_id = :member"],
    # A bonus held below its threshold (the tests' program puts silver far above this member's miles).
    "stage_bonuses_match_miles": [
        "UPDATE member_miles SET bonus_stages = '{silver}' WHERE member_id = :member",
    ],
    "fact_has_its_event": [
        "DELETE FROM timeline_events WHERE member_id = :member AND kind = 'checked_in'",
    ],
}
# Also a fact's event, but on another member's timeline: one member would see another's purchase.
BREAKS["event_of_another_member"] = [
    "UPDATE timeline_events SET member_id = (SELECT id FROM members WHERE id <> :member LIMIT 1)"
    " WHERE member_id = :member AND kind = 'purchased'",
]
REPORTED_AS = {"event_of_another_member": "fact_has_its_event"}


@pytest.mark.parametrize("invariant", sorted(BREAKS))
async def test_a_broken_invariant_is_reported_with_its_member_and_nothing_else(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    db: Database,
    invariant: str,
) -> None:
    members = await a_year_at_the_register(client, clock, terminal, db)
    member = members[1] if invariant in THE_SECOND else members[2]
    async with db.session() as session:  # broken, audited and rolled back in one transaction
        uow = UnitOfWork(session)
        assert await audit_members(uow, members, WHOLE_TIMELINE, STAGES) == []
        for statement in BREAKS[invariant]:
            changed = await session.execute(text(statement), {"member": member})
            assert statement.startswith("ALTER") or getattr(changed, "rowcount", 0) > 0, statement
        found = await audit_members(uow, members, WHOLE_TIMELINE, STAGES)
        await session.rollback()
    assert {(v.member_id, v.invariant) for v in found} == {(member, REPORTED_AS.get(invariant, invariant))}, (
        found
    )
    assert all(v.detail and v.rows for v in found)


async def test_a_member_erased_while_their_batch_is_audited_raises_no_false_alarm(
    client: httpx.AsyncClient, clock: SettableClock, terminal: TerminalCredentials, db: Database
) -> None:
    """Erasing a member empties their events' properties (the refund's event is matched on one); the
    erasure commits between two of the batch's statements, and the events' statement sees it whole."""
    member = await shopper(client)
    member_id = uuid.UUID(member.session["member"]["id"])
    now = clock.now()
    bought = posted(await pos(client, clock, terminal, PURCHASES, sale(4_000, at=now, code=member.code(now))))
    posted(await pos(client, clock, terminal, REFUNDS, refund(bought["receipt_id"], now, amount_minor=1_000)))
    async with db.unit_of_work() as uow:
        read = uow.session.execute

        async def erasing_meanwhile(statement: Any, *args: Any, **kwargs: Any) -> Any:
            if statement is audit._MEMBERS_MISSING_EVENTS:  # the member deletes their account right now
                erased = await client.request(
                    "DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(member.session)
                )
                assert erased.status_code == 204, erased.text
            return await read(statement, *args, **kwargs)

        uow.session.execute = erasing_meanwhile  # type: ignore[method-assign]
        found = await audit_members(uow, [member_id], WHOLE_TIMELINE, STAGES)
    assert found == [], [f"{v.invariant}: {v.detail}" for v in found]
    async with db.unit_of_work() as uow:
        erased_at = await uow.session.execute(
            text("SELECT erased_at FROM members WHERE id = :m"), {"m": member_id}
        )
        assert erased_at.scalar_one() is not None


async def test_a_stage_bonus_spent_taken_back_owed_and_repaid_raises_no_false_alarm(
    client: httpx.AsyncClient, clock: SettableClock, terminal: TerminalCredentials, db: Database
) -> None:
    member = await shopper(client)
    member_id = uuid.UUID(member.session["member"]["id"])
    now = clock.now()
    big = posted(await pos(client, clock, terminal, PURCHASES, sale(150_000, at=now, code=member.code(now))))
    assert big["stages_reached"] == ["silver"], big
    clock.advance(timedelta(seconds=61))
    now = clock.now()
    posted(
        await pos(client, clock, terminal, PURCHASES, sale(500, at=now, code=member.code(now), redeem=500))
    )
    posted(await pos(client, clock, terminal, REFUNDS, refund(big["receipt_id"], now, amount_minor=150_000)))
    clock.advance(timedelta(seconds=61))
    now = clock.now()
    repaying = posted(
        await pos(client, clock, terminal, PURCHASES, sale(20_000, at=now, code=member.code(now)))
    )
    assert repaying["points_repaid"] > 0, repaying
    phone = await log_in_again(client, member)
    assert (await check_in_at_ginza(client, phone, terminal.store_id, clock)).status_code == 200
    async with db.unit_of_work() as uow:
        found = await audit_members(uow, [member_id], WHOLE_TIMELINE, STAGES)
    assert found == [], [f"{v.invariant}: {v.detail}" for v in found]


async def test_a_lot_below_zero_is_found_by_the_one_scan_of_all_lots(
    client: httpx.AsyncClient, clock: SettableClock, terminal: TerminalCredentials, db: Database
) -> None:
    """Only a restore or an edit that bypassed the table's constraint can make one: so here it is dropped,
    and put back whatever the test finds."""
    members = await a_year_at_the_register(client, clock, terminal, db)
    async with db.unit_of_work() as uow:
        await uow.session.execute(text(f"ALTER TABLE point_lots DROP CONSTRAINT {LOTS_CONSTRAINT}"))
        await uow.session.execute(
            text("UPDATE point_lots SET remaining = -remaining WHERE member_id = :member AND remaining > 0"),
            {"member": members[1]},
        )
    try:
        found = [v async for v in audit_ledger(db, WHOLE_TIMELINE, STAGES, AuditSummary())]
    finally:
        async with db.unit_of_work() as uow:
            await uow.session.execute(
                text("UPDATE point_lots SET remaining = -remaining WHERE remaining < 0")
            )
            await uow.session.execute(
                text(
                    f"ALTER TABLE point_lots ADD CONSTRAINT {LOTS_CONSTRAINT}"
                    " CHECK (remaining >= 0 AND remaining <= amount)"
                )
            )
    assert (members[1], "lot_within_amount") in {(v.member_id, v.invariant) for v in found}
    assert {v.member_id for v in found} == {members[1]}


async def test_the_command_exits_1_and_names_the_member_when_the_ledger_is_broken(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    db: Database,
    settings: Settings,
) -> None:
    members = await a_year_at_the_register(client, clock, terminal, db)
    clean = tsunagari(settings, "points", "audit", "--json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout) == {"members": 3, "anonymous_sales": 1, "violations": 0}
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            text("UPDATE member_miles SET miles = miles + 3 WHERE member_id = :member"),
            {"member": members[0]},
        )
    broken = tsunagari(settings, "points", "audit", "--json")
    assert broken.returncode == 1, broken.stderr
    *violations, summary = broken.stdout.splitlines()
    assert json.loads(summary)["violations"] == 1
    (violation,) = [json.loads(line) for line in violations]
    assert (violation["member_id"], violation["invariant"]) == (str(members[0]), "miles_match_facts")
    readable = tsunagari(settings, "points", "audit")
    assert readable.returncode == 1
    assert f"{members[0]}: miles_match_facts" in readable.stdout
    assert "1 violations" in readable.stderr


def test_the_command_exits_2_when_it_could_not_run(settings: Settings) -> None:
    unreachable = msgspec.structs.replace(settings, database_url="postgresql://postgres@127.0.0.1:1/none")
    crashed = tsunagari(unreachable, "points", "audit", "--json")
    assert crashed.returncode == 2, crashed.stderr[-500:]
    assert "could not run" in crashed.stderr
    assert "error" in json.loads(crashed.stdout.splitlines()[-1])
