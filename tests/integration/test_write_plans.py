"""The plan of a use case's one write (points.changes): it reaches the rows it changes by their keys.

PostgreSQL estimates a JSON array's rows at 100 whatever it holds, and against a table of some
thousands of rows that estimate makes a hash join over the whole table look cheaper than a hundred
key lookups: a young program's every sale read all of its accounts. This is measured on a database of
its own, at the size where that plan was seen (bench/growth.py, 10,000 members).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from commands.migrate import upgrade
from infra.db import Database, create_engine
from points.changes import WRITING, Account, Changes, Lot
from points.tables import EntryKind
from tests.conftest import DatabaseFactory
from timeline.recording import recording

MEMBERS = 10_000
NOW = datetime(2027, 1, 11, tzinfo=UTC)

_POPULATE = [
    f"""
    INSERT INTO members (id, card_number, email, time_zone, locale, created_at, updated_at)
    SELECT gen_random_uuid(), lpad(CAST(n AS text), 16, '0'), n || '@example.jp', 'Asia/Tokyo', 'ja-JP',
           now(), now()
    FROM generate_series(1, {MEMBERS}) AS n
    """,  # noqa: S608 - constant SQL
    "INSERT INTO point_accounts SELECT id, 0, 0, 0, 0, now() FROM members",
    """
    INSERT INTO point_lots (id, member_id, source, earned_at, available_at, expires_at, amount, remaining)
    SELECT gen_random_uuid(), id, 'earn', now(), now(), now() + interval '1 year', 10, 10 FROM members
    """,
    "ANALYZE members, point_accounts, point_lots",
]


@pytest.fixture
async def populated(new_database: DatabaseFactory) -> AsyncIterator[Database]:
    # Both run their own event loop (asyncio.run), so from this async fixture they go to a thread.
    url = await asyncio.to_thread(new_database.create, "plans")
    await asyncio.to_thread(upgrade, url)
    database = Database(create_engine(url, pool_size=1))
    async with database.unit_of_work() as uow:
        for statement in _POPULATE:
            await uow.session.execute(text(statement))
    yield database
    await database.dispose()


def scanned_whole(plan: dict[str, Any]) -> Iterator[str]:
    """The tables a plan reads every row of."""
    if plan["Node Type"] == "Seq Scan":
        yield plan["Relation Name"]
    for child in plan.get("Plans", []):
        yield from scanned_whole(child)


async def test_a_write_reaches_the_account_and_lots_it_changes_by_key(populated: Database) -> None:
    async with populated.unit_of_work() as uow:
        member_id, lot_id = (
            await uow.session.execute(text("SELECT member_id, id FROM point_lots LIMIT 1"))
        ).one()
        changes = Changes(NOW)
        changes.touch(
            Account(member_id=member_id, lifetime_earned=0, lifetime_redeemed=3, lifetime_expired=0, owed=0)
        )
        (lot,) = changes.read(
            [
                Lot(
                    id=lot_id,
                    member_id=member_id,
                    purchase_id=None,
                    source=EntryKind.EARN,
                    earned_at=NOW,
                    available_at=NOW,
                    expires_at=NOW + timedelta(days=365),
                    amount=10,
                    remaining=10,
                )
            ]
        )
        lot.remaining -= 3
        params = {**changes.params(), **recording([], NOW).params}
        explained = text(f"EXPLAIN (FORMAT JSON) WITH {WRITING} SELECT 1")
        (plan,) = (await uow.session.execute(explained, params)).scalar_one()
        assert not {"point_accounts", "point_lots"} & set(scanned_whole(plan["Plan"]))
        # The write itself changes just those rows.
        await uow.session.execute(text(f"WITH {WRITING} SELECT 1"), params)
        changed = (
            await uow.session.execute(
                text(
                    "SELECT (SELECT count(*) FROM point_accounts WHERE lifetime_redeemed <> 0),"
                    " (SELECT count(*) FROM point_lots WHERE remaining <> 10)"
                )
            )
        ).one()
        assert tuple(changed) == (1, 1)
