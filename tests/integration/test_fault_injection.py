"""Faults injected while the service works, and the ledger audited afterwards (issue 13.3): database
connections killed at random during a burst of retried sales and returns, Redis cut off during traffic,
and the expiry job killed with a batch open. (A worker killed mid-campaign is in test_push_workers.)"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from datetime import timedelta
from typing import Any

import httpx
import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from domain.clock import SettableClock
from infra.db import Database, asyncpg_url
from infra.redis import TIMEOUT_S
from infra.settings import Settings, env_for_children
from points.audit import AuditSummary, audit_ledger
from points.expiry import expire_due
from tests.conftest import serving
from tests.integration.factories import PASSWORD, TerminalCredentials, bearer, create_terminal
from tests.integration.lock_waits import side_connections, until_waiting
from tests.integration.problems import assert_problem
from tests.integration.register import Shopper, check_in_at_ginza, pos, refund, sale, shopper
from tests.integration.test_ledger_audit import STAGES, WHOLE_TIMELINE
from tests.tcp_proxy import proxy_to

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"
RETRIED = {503, 409, 429}  # as docs/pos-integration.md says; a 409 retried must be request_in_progress


async def until_answered(
    client: httpx.AsyncClient,
    clock: SettableClock,
    till: TerminalCredentials,
    path: str,
    body: dict[str, Any],
    key: str,
) -> tuple[httpx.Response, int]:
    """Post like a register on a flaky network: the same key, re-signed, until an answer is final; the
    answer and the number of attempts."""
    seen: list[str] = []
    for attempt in range(1, 100):
        try:
            answer = await pos(client, clock, till, path, body, key=key)
        except httpx.TransportError as error:
            seen.append(type(error).__name__)
            continue
        if answer.status_code not in RETRIED:
            return answer, attempt
        seen.append(answer.json()["code"])
        assert answer.status_code != 409 or answer.json()["code"] == "request_in_progress", answer.text
        await asyncio.sleep(0.02 * min(attempt, 10))
    raise AssertionError(f"{path} {body} never answered: {seen}")


async def audited(db: Database) -> list[Any]:
    return [violation async for violation in audit_ledger(db, WHOLE_TIMELINE, STAGES, AuditSummary())]


async def test_connections_killed_during_a_burst_of_retried_sales_and_returns_record_each_once(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    admin: dict[str, Any],
    db: Database,
    settings: Settings,
) -> None:
    second = await create_terminal(client, admin, terminal.store_id, name="Register 2")
    members = [await shopper(client) for _ in range(4)]
    now = clock.now()
    sales = [
        (member, sale(1_000 * (k + 1), at=now, code=member.code(now), receipt=f"BURST-{n}-{k}"))
        for n, member in enumerate(members)
        for k in range(4)
    ]
    stop = asyncio.Event()
    kills = 0

    async def kill_connections() -> None:
        """Terminate one of the app's busy connections every 20 to 80 ms, wherever it is: mid-statement,
        waiting for a lock, idle in its transaction between statements, or committing."""
        nonlocal kills
        assert settings.database_url is not None
        side = create_async_engine(
            asyncpg_url(settings.database_url),
            isolation_level="AUTOCOMMIT",
            connect_args={"server_settings": {"application_name": "fault-injector"}},
        )
        try:
            async with side.connect() as connection:
                while not stop.is_set():
                    killed = await connection.execute(
                        text(
                            """
                            SELECT count(pg_terminate_backend(pid)) FROM (
                                SELECT pid FROM pg_stat_activity
                                WHERE datname = current_database() AND application_name = 'tsunagari'
                                  AND state <> 'idle'
                                ORDER BY random() LIMIT 1
                            ) AS chosen
                            """
                        )
                    )
                    kills += killed.scalar_one()
                    await asyncio.sleep(random.uniform(0.02, 0.08))
        finally:
            await side.dispose()

    async def post_all() -> list[tuple[httpx.Response, int]]:
        bought = await asyncio.gather(
            *(
                until_answered(client, clock, terminal, PURCHASES, body, f"sale-{body['receipt_id']}")
                for _, body in sales
            )
        )
        returns = [
            refund(body["receipt_id"], now, amount_minor=body["total_minor"] // (2 if k % 2 else 1))
            for k, (_, body) in enumerate(sales)
            if k % 4 < 2
        ]
        returned = await asyncio.gather(
            *(
                until_answered(client, clock, second, REFUNDS, body, f"return-{body['refund_receipt_id']}")
                for body in returns
            )
        )
        stop.set()
        return [*bought, *returned]

    killer = asyncio.create_task(kill_connections())
    try:
        answers = await post_all()
    finally:
        stop.set()
        await killer
    assert kills >= 5, kills  # the burst met the faults
    assert [answer.status_code for answer, _ in answers] == [201] * len(answers), [
        a.text for a, _ in answers if a.status_code != 201
    ]
    assert sum(attempts for _, attempts in answers) > len(answers)  # some were retried
    async with db.unit_of_work() as uow:
        recorded: dict[str, int] = dict(
            (
                await uow.session.execute(
                    text("SELECT receipt_id, count(*) FROM purchases GROUP BY receipt_id")
                )
            ).all()
        )
        refunds = (
            await uow.session.execute(text("SELECT count(*), count(DISTINCT refund_receipt_id) FROM refunds"))
        ).one()
    assert recorded == {body["receipt_id"]: 1 for _, body in sales}
    assert tuple(refunds) == (8, 8)
    assert await audited(db) == []


async def test_during_a_redis_outage_registers_sell_logins_and_check_ins_wait_and_nothing_is_lost(
    settings: Settings,
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
) -> None:
    member = await shopper(client)
    assert settings.redis_url is not None
    with proxy_to(settings.redis_url) as redis:
        cut_off = msgspec.structs.replace(settings, redis_url=redis.url_through(settings.redis_url))
        with serving(cut_off, clock) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                now = clock.now()
                selling = [
                    asyncio.create_task(
                        until_answered(
                            http,
                            clock,
                            terminal,
                            PURCHASES,
                            sale(800, at=now, code=member.code(now)),
                            f"outage-{k}",
                        )
                    )
                    for k in range(12)
                ]
                await asyncio.sleep(0.05)
                redis.block()
                during = [
                    asyncio.create_task(
                        until_answered(
                            http,
                            clock,
                            terminal,
                            PURCHASES,
                            sale(900, at=now, code=member.code(now)),
                            f"during-{k}",
                        )
                    )
                    for k in range(8)
                ]
                login = await http.post(
                    "/v1/app/sessions",
                    json={"email": member.session["member"]["email"], "password": PASSWORD},
                )
                assert_problem(login, 503, "rate_limiter_unavailable")
                assert_problem(
                    await check_in_at_ginza(http, member, terminal.store_id, clock),
                    503,
                    "rate_limiter_unavailable",
                )
                points = await http.get("/v1/app/points", headers=bearer(member.session))
                assert points.status_code == 200, points.text  # reads need no Redis
                answers = await asyncio.gather(*selling, *during)
                redis.unblock()
                assert [answer.status_code for answer, _ in answers] == [201] * 20
                again = await http.post(
                    "/v1/app/sessions",
                    json={"email": member.session["member"]["email"], "password": PASSWORD},
                )
                assert again.status_code == 200, again.text
                back = Shopper(again.json())
                checked_in = await check_in_at_ginza(http, back, terminal.store_id, clock)
                assert checked_in.status_code == 200, checked_in.text
    async with db.unit_of_work() as uow:
        sold = (await uow.session.execute(text("SELECT count(*) FROM purchases"))).scalar_one()
    assert sold == 20
    assert await audited(db) == []


async def test_a_redis_that_stops_answering_holds_no_request_for_long(
    settings: Settings, client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    """Not refused but silent (packets dropped): the replay guard and the rate limits give up after their
    timeout, and a register still sells, a login is still refused, within seconds."""
    member = await shopper(client)
    assert settings.redis_url is not None
    with proxy_to(settings.redis_url) as redis:
        silent = msgspec.structs.replace(settings, redis_url=redis.url_through(settings.redis_url))
        with serving(silent, clock) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                now = clock.now()
                warm = await pos(http, clock, terminal, PURCHASES, sale(700, at=now, code=member.code(now)))
                assert warm.status_code == 201, warm.text
                redis.hang()
                started = time.monotonic()
                sold = await pos(http, clock, terminal, PURCHASES, sale(800, at=now, code=member.code(now)))
                sold_in = time.monotonic() - started
                started = time.monotonic()
                login = await http.post(
                    "/v1/app/sessions",
                    json={"email": member.session["member"]["email"], "password": PASSWORD},
                )
                refused_in = time.monotonic() - started
                redis.hang(False)
    assert sold.status_code == 201, sold.text
    assert_problem(login, 503, "rate_limiter_unavailable")
    # Without a timeout each would wait for the client's 30 s; with it, one Redis call's worth and slack.
    assert sold_in < 5 * TIMEOUT_S, sold_in
    assert refused_in < 5 * TIMEOUT_S, refused_in


async def test_expiry_killed_with_a_batch_open_and_run_again_expires_each_lot_once(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    db: Database,
    settings: Settings,
) -> None:
    members = [await shopper(client) for _ in range(12)]
    now = clock.now()
    for member in members:
        for total in (3_000, 5_000):
            answer = await pos(client, clock, terminal, PURCHASES, sale(total, at=now, code=member.code(now)))
            assert answer.status_code == 201, answer.text
    due_at = now + timedelta(days=800)
    async with db.unit_of_work() as uow:
        held = (await uow.session.execute(text("SELECT sum(remaining) FROM point_lots"))).scalar_one()
        accounts = list(
            (
                await uow.session.execute(text("SELECT member_id FROM point_accounts ORDER BY member_id"))
            ).scalars()
        )
    async with side_connections(settings) as side, side.connect() as holder:
        # The job expires one member per transaction here; a lock on the seventh member's account holds
        # it inside that member's transaction (waiting to lock the account, nothing written yet), with six
        # committed before it, when it is killed: what a kill mid-job leaves is what the rerun must finish.
        await holder.execute(text("BEGIN"))
        await holder.execute(
            text("SELECT 1 FROM point_accounts WHERE member_id = :m FOR UPDATE"), {"m": accounts[6]}
        )
        job = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _EXPIRE_ONE_MEMBER_A_TIME,
            due_at.isoformat(),
            env={**os.environ, **env_for_children(settings)},
        )
        try:
            await until_waiting(side, "%point_accounts%")
            job.send_signal(signal.SIGKILL)
        finally:
            if job.returncode is None:
                job.kill()
            await job.wait()
        await holder.execute(text("ROLLBACK"))
    async with db.unit_of_work() as uow:
        before_kill = (
            await uow.session.execute(
                text("SELECT count(*), coalesce(-sum(points), 0) FROM point_entries WHERE kind = 'expire'")
            )
        ).one()
    assert (
        before_kill[0] == 6 * 2
    )  # six members' two lots each, committed before the kill; the seventh's rolled back
    assert await expire_due(db, due_at) == held - before_kill[1]
    async with db.unit_of_work() as uow:
        per_lot = (
            await uow.session.execute(
                text(
                    "SELECT count(*), count(DISTINCT lot_id), -sum(points) FROM point_entries"
                    " WHERE kind = 'expire'"
                )
            )
        ).one()
    assert tuple(per_lot) == (24, 24, held)  # every lot expired exactly once, all it held
    assert await audited(db) == []


# `points.expiry.expire_due` as the worker runs it, in a process of its own, one member per transaction.
_EXPIRE_ONE_MEMBER_A_TIME = """
import asyncio, sys
from datetime import datetime
import points.expiry
from infra.db import Database, create_engine
from infra.settings import load_settings

points.expiry.MEMBERS_PER_BATCH = 1
settings = load_settings()

async def main():
    db = Database(create_engine(settings.database_url, pool_size=1))
    await points.expiry.expire_due(db, datetime.fromisoformat(sys.argv[1]))

asyncio.run(main())
"""
