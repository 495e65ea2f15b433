"""The register under load: POST /v1/pos/purchases and GET /v1/app/points at 16 and 64 concurrent clients.

    .venv/bin/python -m bench.register_load [--members 2000] [--requests 2000]

Every purchase is a real signed request with its own Idempotency-Key; two out of three carry a fresh
rotating member code (computed like the app does), one in ten of those also redeems a point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from sqlalchemy import insert

from accounts.device_secrets import device_code_secret, new_device_salt
from accounts.rules import new_card_number
from accounts.tables import Member, MemberDevice
from bench.harness import (
    LoadResult,
    bench_settings,
    fresh_database,
    request_line,
    run_load,
    running_server,
    signed_pos_headers,
    wrk_output,
)
from domain.clock import Clock, SystemClock
from domain.ids import new_id
from domain.keys import SigningKey
from domain.tokens import Audience, issue_access_token
from infra.db import Database, UnitOfWork, create_engine
from infra.settings import Settings
from points.member_codes import member_code
from stores.schemas import StoreDraft, TerminalDraft
from stores.service import create_store, create_terminal

TERMINALS = 64
# Pre-signed purchases per second of a wrk run: more than the server takes (each is single-use; wrk
# repeating one would show as an error, see wrk/replay.lua).
PURCHASES_PER_SECOND = 1500


def sale_body(receipt_id: str, sold_at: datetime, total: int) -> dict[str, object]:
    """A one-line sale, as a POS would post it."""
    line = {
        "line_no": 1,
        "sku": "4550002",
        "category": "stationery",
        "quantity": 1,
        "unit_price_minor": total,
    }
    return {
        "receipt_id": receipt_id,
        "sold_at": sold_at.isoformat(),
        "currency": "JPY",
        "total_minor": total,
        "lines": [line],
    }


@dataclass(frozen=True)
class Shopper:
    member_id: uuid.UUID
    card: str
    device_secrets: tuple[bytes, ...]  # by device slot, from 0


async def seed_terminals(uow: UnitOfWork, clock: Clock, terminal_key: SigningKey) -> list[tuple[str, str]]:
    """TERMINALS terminals (key id, secret), four per store: terminals 4s..4s+3 belong to store s."""
    terminals = []
    for n in range(TERMINALS // 4):
        store = await create_store(
            uow,
            clock,
            StoreDraft(
                code=f"BENCH-{n:03d}",
                name=f"Bench {n}",
                address="Tokyo",
                latitude=35.68,
                longitude=139.76,
            ),
        )
        for register_no in range(4):
            created = await create_terminal(
                uow, clock, terminal_key, store.id, TerminalDraft(name=f"R{register_no}")
            )
            terminals.append((created.key_id, created.secret))
    return terminals


async def seed_shoppers(
    uow: UnitOfWork, code_key: str, count: int, now: datetime, slots: int = 1, label: str = "bench"
) -> list[Shopper]:
    """Members with `slots` logged-in devices each, so the bench can compute their rotating codes."""
    shoppers, member_rows, device_rows = [], [], []
    for n in range(count):
        member_id, card = new_id(), new_card_number()
        member_rows.append(
            {
                "id": member_id,
                "card_number": card,
                "email": f"{label}{n}@example.jp",
                "password_hash": "x",
                "display_name": f"Bench {n}",
                "time_zone": "Asia/Tokyo",
                "locale": "ja-JP",
                "created_at": now,
                "updated_at": now,
            }
        )
        salts = [new_device_salt() for _ in range(slots)]
        device_rows += [
            {"member_id": member_id, "slot": slot, "secret_salt": salt, "created_at": now}
            for slot, salt in enumerate(salts)
        ]
        secrets = tuple(
            device_code_secret(code_key, member_id, slot, salt) for slot, salt in enumerate(salts)
        )
        shoppers.append(Shopper(member_id, card, secrets))
    await uow.session.execute(insert(Member), member_rows)
    await uow.session.execute(insert(MemberDevice), device_rows)
    return shoppers


async def seed(
    url: str, terminal_key: SigningKey, code_key: str, members: int
) -> tuple[list[tuple[str, str]], list[Shopper]]:
    db = Database(create_engine(url, pool_size=2))
    clock = SystemClock()
    async with db.unit_of_work() as uow:
        terminals = await seed_terminals(uow, clock, terminal_key)
        shoppers = await seed_shoppers(uow, code_key, members, clock.now())
    await db.dispose()
    return terminals, shoppers


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    parser.add_argument(
        "--python-client", action="store_true", help="use the Python client even if wrk is here"
    )
    args = parser.parse_args()
    url = await fresh_database("tsunagari_bench_register")
    # Static card numbers let pre-signed wrk requests carry a member without a code expiring meanwhile.
    settings = msgspec.structs.replace(
        bench_settings(url, workers=2), points_program='{"allow_static_card_numbers": true}'
    )
    terminals, shoppers = await seed(
        url,
        settings.key_ring("terminal_key").current,
        settings.key_ring("code_signing_key").current.secret,
        args.members,
    )
    rng = random.Random(3)
    run_id = secrets.token_hex(4)

    def purchase_sender(concurrency: int) -> Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]:
        async def send(client: httpx.AsyncClient, n: int) -> httpx.Response:
            terminal_no = n % concurrency
            key_id, secret = terminals[terminal_no]
            now = datetime.now(UTC)
            body = sale_body(f"B-{run_id}-{concurrency}-{n}", now, rng.randrange(300, 20_000))
            if n % 3:
                # Shoppers of a store stay at that store: one code at two stores at once is refused.
                store_no = terminal_no // 4
                shopper = shoppers[
                    store_no + len(terminals) // 4 * rng.randrange(len(shoppers) * 4 // len(terminals))
                ]
                body["member_code"] = member_code(shopper.card, 0, shopper.device_secrets[0], now)
            raw = json.dumps(body).encode()
            headers = {
                **signed_pos_headers(key_id, secret, "POST", "/v1/pos/purchases", raw, now),
                "Content-Type": "application/json",
                "Idempotency-Key": f"bench-{run_id}-{concurrency}-{n}",
            }
            return await client.post("/v1/pos/purchases", content=raw, headers=headers)

        return send

    tokens = [
        issue_access_token(
            settings.key_ring("jwt_signing_key").current,
            member_id,
            Audience.MEMBER,
            None,
            datetime.now(UTC),
            timedelta(hours=2),
            0,
        )[0]
        for member_id in (shopper.member_id for shopper in shoppers)
    ]

    async def read_points(client: httpx.AsyncClient, n: int) -> httpx.Response:
        return await client.get(
            "/v1/app/points", headers={"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
        )

    if shutil.which("wrk") and not args.python_client:
        await with_wrk(settings, terminals, shoppers, tokens, args.seconds)
        return
    results: list[tuple[str, LoadResult]] = []
    with running_server(settings) as base:
        await run_load(16, 100, read_points, base)  # warm-up
        for concurrency in (16, 64):
            results.append(
                (
                    f"POST /v1/pos/purchases, {concurrency} terminals",
                    await run_load(concurrency, args.requests, purchase_sender(concurrency), base),
                )
            )
        for concurrency in (16, 64):
            results.append(
                (
                    f"GET /v1/app/points, {concurrency} clients",
                    await run_load(concurrency, args.requests, read_points, base),
                )
            )
    for label, result in results:
        print(result.line(label))


def purchase_lines(
    terminals: list[tuple[str, str]],
    shoppers: list[Shopper],
    concurrency: int,
    count: int,
    tag: str,
) -> list[str]:
    """Pre-signed purchases; two in three carry a member (static card number, see above)."""
    rng = random.Random(concurrency)
    now = datetime.now(UTC)
    lines = []
    for n in range(count):
        key_id, secret = terminals[n % concurrency]
        body = sale_body(f"W-{tag}-{n}", now, rng.randrange(300, 20_000))
        if n % 3:
            body["member_code"] = shoppers[rng.randrange(len(shoppers))].card
        raw = json.dumps(body, separators=(",", ":"))
        lines.append(
            request_line(
                "POST",
                "/v1/pos/purchases",
                terminal=(key_id, secret),
                key=f"wrk-{tag}-{n:06d}",
                body=raw,
                at=now,
            )
        )
    return lines


def wrk(base: str, path: str, connections: int, seconds: int, lines: list[str]) -> str:
    out = wrk_output(base, path, connections, seconds, lines)
    keep = ("Requests/sec", " 50%", " 99%", "Non-2xx", "requests in")
    return "\n".join(line for line in out.splitlines() if any(k in line for k in keep))


async def with_wrk(
    settings: Settings,
    terminals: list[tuple[str, str]],
    shoppers: list[Shopper],
    tokens: list[str],
    seconds: int,
) -> None:
    """wrk (C) as the load generator: a Python client saturates these two cores before the server does."""
    with running_server(settings) as base:
        for concurrency in (16, 64):
            count = PURCHASES_PER_SECOND * seconds
            lines = purchase_lines(terminals, shoppers, concurrency, count, f"{concurrency}")
            print(f"POST /v1/pos/purchases, {concurrency} terminals (wrk, {seconds}s):")
            print(wrk(base, "/v1/pos/purchases", concurrency, seconds, lines))
        reads = [request_line("GET", "/v1/app/points", token=token) for token in tokens]
        for concurrency in (16, 64):
            print(f"GET /v1/app/points, {concurrency} clients (wrk, {seconds}s):")
            print(wrk(base, "/v1/app/points", concurrency, seconds, reads * 20))


if __name__ == "__main__":
    asyncio.run(main())
