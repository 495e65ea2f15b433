"""Pooled connections whose server backend is gone are replaced before a request uses them.

No connection is pinged when it leaves the pool (that would cost round trips on every request); a
connection the server has closed is known closed to the driver and is swapped for a fresh one, before
the request has sent anything in its transaction, so nothing is ever sent twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text

from domain.clock import SettableClock
from infra.db import Database
from tests.integration.factories import bearer, sign_up
from tests.integration.test_check_ins import TOKYO, check_in, check_in_body, rows, store_at

POOL_SIZE = 10  # the app's default pool


async def terminate_other_backends(db: Database) -> int:
    """Terminate every other backend of the test database (the app's pooled connections among them),
    waiting for each to exit, as an operator's `pg_terminate_backend` or a PostgreSQL restart would."""
    async with db.unit_of_work() as uow:
        result = await uow.session.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_type = 'client backend'"
                " AND pid <> pg_backend_pid()"
            )
        )
        return int(result.scalar_one())


async def fill_the_pool(client: httpx.AsyncClient, member: dict[str, Any]) -> None:
    """Enough requests at once that the app opens (and then pools) as many connections as it may."""
    answers = await asyncio.gather(
        *(client.get("/v1/app/points", headers=bearer(member)) for _ in range(3 * POOL_SIZE))
    )
    assert [a.status_code for a in answers] == [200] * len(answers)


async def checked_in_events(db: Database, member_id: str) -> int:
    async with db.unit_of_work() as uow:
        result = await uow.session.execute(
            text("SELECT count(*) FROM timeline_events WHERE member_id = :m AND kind = 'checked_in'"),
            {"m": member_id},
        )
        return int(result.scalar_one())


async def test_a_check_in_after_the_pool_s_backends_were_terminated_is_accepted_once(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    store = await store_at(client, admin, TOKYO)
    member = await sign_up(client)
    member_id = member["member"]["id"]
    await fill_the_pool(client, member)
    # Every connection in the app's pool dies; it pools at least the one that served the sign-up.
    assert await terminate_other_backends(db) >= 1

    body = check_in_body(store, TOKYO, clock.now())
    headers = bearer(member) | {"Idempotency-Key": "check-in-after-terminate"}
    accepted = await client.post("/v1/app/check-ins", json=body, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["duplicate"], accepted.json()["miles_awarded"]) == (False, 20)
    replayed = await client.post("/v1/app/check-ins", json=body, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert [await rows(db, table, member_id) for table in ("check_ins", "check_in_attempts")] == [1, 1]
    assert await checked_in_events(db, member_id) == 1
    points = await client.get("/v1/app/points", headers=bearer(member))
    assert points.json()["miles_this_period"] == 20


async def test_requests_at_once_after_the_backends_were_terminated_all_succeed(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    """Every pooled connection is dead: each request at once gets a fresh one."""
    store = await store_at(client, admin, TOKYO)
    members = [await sign_up(client) for _ in range(POOL_SIZE)]
    await fill_the_pool(client, members[0])
    assert await terminate_other_backends(db) >= 1

    answers = await asyncio.gather(*(check_in(client, m, store, TOKYO, clock.now()) for m in members))
    assert [a.status_code for a in answers] == [200] * POOL_SIZE, [a.text for a in answers]
    assert [await checked_in_events(db, m["member"]["id"]) for m in members] == [1] * POOL_SIZE
    await fill_the_pool(client, members[0])
