"""The data every hot path of the side-by-side benchmark needs, in one scratch database.

Built with the other benchmarks' builders (stores and members by COPY, terminals and shoppers through the
product's use cases, a year of timeline events, offers with a learned policy), plus one refundable sale
per shopper and per redeemer, recorded through `points.sales.record_purchase` itself so that balances,
lots, miles and stages are the product's own.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import msgspec
from sqlalchemy import select

from bench.geofence_load import load as load_stores_and_members
from bench.harness import bench_settings
from bench.offer_selection import PROGRAM as OFFER_PROGRAM
from bench.offer_selection import install_policy, load_offers
from bench.register_load import TERMINALS, Shopper, sale_body, seed_shoppers, seed_terminals
from bench.timeline_load import load_events
from domain.clock import SystemClock
from domain.keys import KeyRing
from domain.tokens import Audience, issue_access_token
from infra.db import Database, create_engine
from infra.settings import Settings
from points.program import Program
from points.register import Register
from points.sales import record_purchase
from points.schemas import PurchaseRequest
from points.tables import PointLot
from stores.tables import Terminal

STORES_WITH_TERMINALS = TERMINALS // 4
REDEEM_SLOTS = 99  # devices per redeemer: a rotating code pays with points once, so each redemption
# in a run needs its own (member, device) code
SEED_QUANTITY = 1000  # each seeded sale is 1,000 items: that many partial refunds
SHOPPER_UNIT_PRICE = 1000  # 1,000,000 yen a sale: 10,000 points
# 100,000,000 yen: a million points, that thousands of replayed redemptions of 100 do not exhaust
REDEEMER_UNIT_PRICE = 100_000
SEED_BATCH = 50


@dataclass(frozen=True)
class PosTerminal:
    key_id: str
    secret: str
    id: uuid.UUID
    store_id: uuid.UUID


@dataclass(frozen=True)
class Sale:
    """A seeded sale: its receipt, its member and the lot its points went to."""

    receipt_id: str
    purchase_id: uuid.UUID
    member_id: uuid.UUID
    lot_id: uuid.UUID
    store_no: int


@dataclass(frozen=True)
class World:
    settings: Settings
    terminals: list[PosTerminal]  # terminals 4s..4s+3 belong to store s
    shoppers: list[Shopper]  # one device; shopper n shops at store n % STORES_WITH_TERMINALS
    redeemers: list[Shopper]  # REDEEM_SLOTS devices; same store rule
    originals: list[Sale]  # one refundable sale per shopper
    first_lots: dict[uuid.UUID, uuid.UUID]  # redeemer -> the lot a redemption draws from first
    seed_lots: dict[uuid.UUID, uuid.UUID]  # redeemer -> the lot of its seeded sale (most of its points)
    stores: list[tuple[uuid.UUID, float, float]]  # every store: id, latitude, longitude
    check_in_members: list[uuid.UUID]  # members who never checked in
    tokens: dict[uuid.UUID, str]  # member -> access token


@dataclass(frozen=True)
class Sizes:
    stores: int
    shoppers: int
    redeemers: int
    check_in_members: int
    timeline_events: int
    offers: int


async def build_world(url: str, workers: int, sizes: Sizes) -> World:
    settings = msgspec.structs.replace(
        bench_settings(url, workers), offer_program=msgspec.json.encode(OFFER_PROGRAM).decode()
    )
    clock = SystemClock()
    now = clock.now()
    stores, check_in_members = await load_stores_and_members(url, sizes.stores, sizes.check_in_members)
    db = Database(create_engine(url, pool_size=4))
    code_key = settings.key_ring("code_signing_key").current.secret
    async with db.unit_of_work() as uow:
        keys = await seed_terminals(uow, clock, settings.key_ring("terminal_key").current)
        shoppers = await seed_shoppers(uow, code_key, sizes.shoppers, now, label="shopper")
        redeemers = await seed_shoppers(uow, code_key, sizes.redeemers, now, REDEEM_SLOTS, "redeemer")
        rows = (await uow.session.execute(select(Terminal.key_id, Terminal.id, Terminal.store_id))).all()
    ids = {key_id: (terminal_id, store_id) for key_id, terminal_id, store_id in rows}
    terminals = [PosTerminal(key_id, secret, *ids[key_id]) for key_id, secret in keys]
    code_keys = settings.key_ring("code_signing_key")
    originals = await _seed_sales(db, code_keys, terminals, shoppers, "SEED", SHOPPER_UNIT_PRICE)
    funds = await _seed_sales(db, code_keys, terminals, redeemers, "FUND", REDEEMER_UNIT_PRICE)
    first_lots = await _first_lots(db, [r.member_id for r in redeemers])
    await db.dispose()
    connection = await asyncpg.connect(url)
    try:
        await load_events(connection, [s.member_id for s in shoppers], sizes.timeline_events, now)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    offer_ids = await load_offers(url, sizes.offers, now)
    await install_policy(url, offer_ids, now)
    key = settings.key_ring("jwt_signing_key").current
    members = [*(s.member_id for s in shoppers), *check_in_members]
    tokens = {
        m: issue_access_token(key, m, Audience.MEMBER, None, now, timedelta(hours=3), 0)[0] for m in members
    }
    return World(
        settings,
        terminals,
        shoppers,
        redeemers,
        originals,
        first_lots,
        {sale.member_id: sale.lot_id for sale in funds},
        stores,
        check_in_members,
        tokens,
    )


async def _seed_sales(
    db: Database,
    code_keys: KeyRing,
    terminals: list[PosTerminal],
    members: list[Shopper],
    label: str,
    unit_price_minor: int,
) -> list[Sale]:
    """One sale of SEED_QUANTITY items per member at their store (static card: no code to rotate)."""
    program = Program(allow_static_card_numbers=True)

    async def batch(first: int) -> list[Sale]:
        sales = []
        async with db.unit_of_work() as uow:
            for n in range(first, min(first + SEED_BATCH, len(members))):
                store_no = n % STORES_WITH_TERMINALS
                terminal = terminals[4 * store_no]
                now = SystemClock().now()
                total = SEED_QUANTITY * unit_price_minor
                body = sale_body(f"{label}-{n:06d}", now - timedelta(minutes=5), total)
                sale = msgspec.convert(body, PurchaseRequest)
                line = msgspec.structs.replace(
                    sale.lines[0], quantity=SEED_QUANTITY, unit_price_minor=unit_price_minor
                )
                sale = msgspec.structs.replace(sale, lines=[line], member_code=members[n].card)
                register = Register(terminal.store_id, terminal.id, now)
                result = await record_purchase(uow, program, code_keys, register, sale)
                sales.append((n, result.purchase_id, store_no))
            rows = await uow.session.execute(
                select(PointLot.purchase_id, PointLot.id).where(
                    PointLot.purchase_id.in_([purchase_id for _, purchase_id, _ in sales])
                )
            )
            lots = {purchase_id: lot_id for purchase_id, lot_id in rows.tuples()}
        return [
            Sale(f"{label}-{n:06d}", purchase_id, members[n].member_id, lots[purchase_id], store_no)
            for n, purchase_id, store_no in sales
        ]

    batches = await asyncio.gather(*(batch(first) for first in range(0, len(members), SEED_BATCH)))
    return [sale for sales in batches for sale in sales]


async def _first_lots(db: Database, members: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The lot a redemption takes first: first-expiring, then oldest (as points.ledger orders them)."""
    async with db.unit_of_work() as uow:
        rows = await uow.session.execute(
            select(PointLot.member_id, PointLot.id)
            .where(PointLot.member_id.in_(members), PointLot.remaining > 0)
            .order_by(PointLot.member_id, PointLot.expires_at, PointLot.id)
            .distinct(PointLot.member_id)
        )
        return {member_id: lot_id for member_id, lot_id in rows.tuples()}
