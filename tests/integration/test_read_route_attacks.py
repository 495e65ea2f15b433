"""Attacks on the app's read-only routes (issue 12): they run on the reader pool, so they must answer while
every writer connection is taken, and no input may lead one of them into a write (refused there: a 500)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import text

from domain.clock import SettableClock
from infra.db import Database
from tests.integration.factories import PASSWORD, TerminalCredentials, bearer, sign_up
from tests.integration.register import days_ago, pos, sale, shopper

PURCHASES = "/v1/pos/purchases"
READS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/app/points", {}),
    ("/v1/app/points/history", {"limit": 1}),
    ("/v1/app/devices", {}),
    ("/v1/app/stores/nearby", {"lat": 35.68, "lon": 139.76, "limit": 50, "radius_m": 1}),
    ("/v1/app/stores/regions", {"lat": -89.99, "lon": 179.99}),
    ("/v1/app/timeline", {"phase": "buy", "since": "2000-01-01T00:00:00Z"}),
    ("/v1/app/me", {}),
]


async def test_reads_answer_while_every_writer_connection_waits_on_a_member_lock(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    """Fifteen sales of one member, whose account a long transaction holds, take the ten writer
    connections and queue for more; another member's reads must not queue behind them."""
    busy, reader = await shopper(client), await sign_up(client)
    await pos(
        client,
        clock,
        terminal,
        PURCHASES,
        sale(1_000, at=days_ago(clock.now(), 3), code=busy.code(clock.now())),
    )
    async with db.unit_of_work() as held:
        await held.session.execute(
            text("SELECT 1 FROM point_accounts WHERE member_id = :m FOR UPDATE"),
            {"m": busy.session["member"]["id"]},
        )
        code = busy.code(clock.now())
        sales = [
            asyncio.create_task(
                pos(client, clock, terminal, PURCHASES, sale(1_000, at=clock.now(), code=code))
            )
            for _ in range(15)
        ]
        await asyncio.sleep(1)  # the sales have taken their connections and wait for the account
        started = time.monotonic()
        for path, params in READS:
            response = await client.get(path, params=params, headers=bearer(reader))
            assert response.status_code == 200, (path, response.text)
        assert time.monotonic() - started < 5
        assert not any(task.done() for task in sales)
    assert [answer.status_code for answer in await asyncio.gather(*sales)] == [201] * 15


async def test_read_routes_on_odd_inputs_answer_without_writing(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    member = await shopper(client)
    await pos(client, clock, terminal, PURCHASES, sale(1_000, at=clock.now(), code=member.code(clock.now())))
    headers = bearer(member.session)
    odd: list[tuple[str, dict[str, Any], int]] = [
        ("/v1/app/points/history", {"cursor": "not-a-cursor"}, 422),
        ("/v1/app/timeline", {"cursor": "AAAA"}, 422),
        ("/v1/app/timeline", {"until": "1970-01-01T00:00:00Z"}, 400),
        ("/v1/app/timeline", {"until": "2000-01-01T00:00:00Z"}, 200),
        ("/v1/app/stores/nearby", {"lat": 91, "lon": 0}, 400),
    ]
    for path, params, status in odd:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == status, (path, params, response.text)
    answers = await asyncio.gather(
        *(client.get(path, params=params, headers=headers) for path, params in READS * 20)
    )
    assert {answer.status_code for answer in answers} == {200}
    erased = await client.request("DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=headers)
    assert erased.status_code == 204, erased.text
    for path, params in READS:  # a token outliving its member's erasure
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code < 500, (path, response.text)
