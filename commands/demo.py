"""Demo data for the embedded `serve`: a small retailer with stores in Tokyo and Osaka, staff and members,
and a year of the members' history (commands.demo_history).

Seeding is idempotent: whatever already exists (matched by store code or email) is left alone, and the
history is seeded once (its offers mark it), so a restarted demo keeps its data and a second run writes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import func, insert, select
from sqlalchemy.orm import InstrumentedAttribute

from accounts.device_secrets import new_device_salt
from accounts.rules import StaffRole, new_card_number
from accounts.staff import create_staff
from accounts.tables import Member, MemberDevice, Staff
from commands.demo_history import claim_history, seed_history
from commands.demo_people import seeded_id
from domain.clock import Clock
from domain.keys import SigningKey
from domain.passwords import hash_password
from infra.db import Database, UnitOfWork
from offers.catalogue import CatalogueRules, change_state, create_offer
from offers.program import OfferProgram
from offers.rules.terms import AmountOff, BonusPoints, Multiplier, OfferState, VisitBonus
from offers.schemas import OfferDraft
from offers.tables import Offer
from points.program import Program
from stores.schemas import StoreDraft, TerminalDraft
from stores.service import create_store, create_terminal
from stores.tables import Store

log = logging.getLogger(__name__)

# For the embedded demo only: `serve` prints it so a first-time user can log in at once.
# Anyone who reads this file knows it, so it must never guard real data.
DEMO_PASSWORD = "tsunagari-demo"  # noqa: S105
DEMO_EMAIL_DOMAIN = "demo.tsunagari.jp"
ADMIN_EMAIL = f"admin@{DEMO_EMAIL_DOMAIN}"
MARKETER_EMAIL = f"marketer@{DEMO_EMAIL_DOMAIN}"
DEMO_BRAND = "つながりマート"
DEMO_TIME_ZONE = "Asia/Tokyo"  # Osaka shares Tokyo's zone: all of Japan is on JST
DEMO_MEMBER_COUNT = 300
DEMO_HISTORY = timedelta(days=2 * 365)
DEMO_RANDOM_SEED = 20240401
DEMO_PUSH_DECLINED = 0.2  # the share of demo members who turned notifications off
# Serialises seeders that start together (several workers of one deployment); any constant the
# rest of the application does not use as an advisory lock key will do.
DEMO_SEED_LOCK_KEY = 0x7473_756E_6167_6172  # "tsunagar" in ASCII


class DemoStore(msgspec.Struct, frozen=True):
    code: str
    district: str
    address: str
    latitude: float
    longitude: float
    check_in_radius_m: int


class DemoTerminal(msgspec.Struct, frozen=True):
    key_id: str
    secret: str
    store_code: str


class DemoCredentials(msgspec.Struct, frozen=True):
    """What `serve` prints so a new user can log in; `terminals` lists only those created in this run."""

    admin_email: str
    marketer_email: str
    staff_password: str
    member_email: str
    member_password: str
    terminals: list[DemoTerminal]


# Coordinates are of the named district's main street or station; a tighter radius where shops
# stand door to door, a wider one in the suburbs.
DEMO_STORES: tuple[DemoStore, ...] = (
    DemoStore("TKY-GINZA", "銀座", "東京都中央区銀座4-6-16", 35.6717, 139.7650, 100),
    DemoStore("TKY-SHINJUKU", "新宿", "東京都新宿区新宿3-38-1", 35.6909, 139.7003, 100),
    DemoStore("TKY-SHIBUYA", "渋谷", "東京都渋谷区道玄坂2-1-1", 35.6595, 139.7004, 100),
    DemoStore("TKY-IKEBUKURO", "池袋", "東京都豊島区南池袋1-28-1", 35.7295, 139.7109, 120),
    DemoStore("TKY-UENO", "上野", "東京都台東区上野4-10-7", 35.7100, 139.7745, 120),
    DemoStore("TKY-AKIHABARA", "秋葉原", "東京都千代田区外神田1-15-16", 35.6984, 139.7731, 100),
    DemoStore("TKY-ASAKUSA", "浅草", "東京都台東区浅草1-3-1", 35.7110, 139.7963, 120),
    DemoStore("TKY-HARAJUKU", "原宿", "東京都渋谷区神宮前1-8-2", 35.6702, 139.7027, 100),
    DemoStore("TKY-ROPPONGI", "六本木", "東京都港区六本木6-1-24", 35.6628, 139.7314, 120),
    DemoStore("TKY-MARUNOUCHI", "丸の内", "東京都千代田区丸の内2-4-1", 35.6812, 139.7671, 100),
    DemoStore("TKY-NIHONBASHI", "日本橋", "東京都中央区日本橋1-4-1", 35.6840, 139.7744, 120),
    DemoStore("TKY-SHINAGAWA", "品川", "東京都港区高輪3-26-27", 35.6285, 139.7388, 150),
    DemoStore("TKY-EBISU", "恵比寿", "東京都渋谷区恵比寿南1-5-5", 35.6467, 139.7101, 120),
    DemoStore("TKY-NAKAMEGURO", "中目黒", "東京都目黒区上目黒3-4-1", 35.6440, 139.6989, 150),
    DemoStore("TKY-SHIMOKITA", "下北沢", "東京都世田谷区北沢2-24-2", 35.6613, 139.6680, 150),
    DemoStore("TKY-JIYUGAOKA", "自由が丘", "東京都目黒区自由が丘1-29-3", 35.6076, 139.6688, 150),
    DemoStore("TKY-KOENJI", "高円寺", "東京都杉並区高円寺南4-27-10", 35.7053, 139.6496, 180),
    DemoStore("TKY-KICHIJOJI", "吉祥寺", "東京都武蔵野市吉祥寺本町1-11-5", 35.7033, 139.5797, 200),
    DemoStore("OSA-UMEDA", "梅田", "大阪府大阪市北区角田町8-7", 34.7025, 135.4959, 100),
    DemoStore("OSA-NAKAZAKICHO", "中崎町", "大阪府大阪市北区中崎西2-4-12", 34.7069, 135.5049, 150),
    DemoStore("OSA-TENMA", "天満", "大阪府大阪市北区天神橋4-7-1", 34.7045, 135.5120, 150),
    DemoStore("OSA-SHIN-OSAKA", "新大阪", "大阪府大阪市淀川区西中島5-16-1", 34.7334, 135.5001, 150),
    DemoStore("OSA-KITAHAMA", "北浜", "大阪府大阪市中央区北浜1-8-16", 34.6915, 135.5075, 120),
    DemoStore("OSA-HONMACHI", "本町", "大阪府大阪市中央区本町3-5-7", 34.6823, 135.4985, 120),
    DemoStore("OSA-SHINSAIBASHI", "心斎橋", "大阪府大阪市中央区心斎橋筋1-7-1", 34.6748, 135.5012, 100),
    DemoStore("OSA-DOTONBORI", "道頓堀", "大阪府大阪市中央区道頓堀1-6-14", 34.6687, 135.5013, 100),
    DemoStore("OSA-NAMBA", "難波", "大阪府大阪市中央区難波5-1-60", 34.6659, 135.5013, 100),
    DemoStore("OSA-SHINSEKAI", "新世界", "大阪府大阪市浪速区恵美須東1-18-6", 34.6525, 135.5063, 150),
    DemoStore("OSA-TENNOJI", "天王寺", "大阪府大阪市阿倍野区阿倍野筋1-1-43", 34.6458, 135.5136, 120),
    DemoStore("OSA-KYOBASHI", "京橋", "大阪府大阪市都島区東野田町2-1-38", 34.6967, 135.5343, 150),
)

# Among the most common Japanese family and given names, so the member list reads like a real one.
FAMILY_NAMES = (
    "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
    "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水",
    "山崎", "森", "池田", "橋本", "阿部", "石川", "山下", "中島", "石井", "小川",
)  # fmt: skip
GIVEN_NAMES = (
    "陽翔", "蓮", "湊", "大翔", "悠真", "樹", "健太", "翔太", "大輔", "拓也",
    "直樹", "誠", "浩二", "翼", "颯太", "陽菜", "結菜", "葵", "凛", "芽依",
    "さくら", "美咲", "由美", "恵子", "裕子", "智子", "真由美", "彩", "優花", "愛",
)  # fmt: skip


async def seed_demo(db: Database, clock: Clock, terminal_key: SigningKey) -> DemoCredentials:
    """Create whatever part of the demo retailer is missing, in one transaction; then, the first time,
    its members' year of history (commands.demo_history, claimed in that transaction).

    Returns the logins to print; terminal secrets are only known when a terminal is created,
    so only this run's terminals are listed (none when the demo was already seeded).
    """
    now = clock.now()
    async with db.unit_of_work() as uow:
        await uow.session.execute(select(func.pg_advisory_xact_lock(DEMO_SEED_LOCK_KEY)))
        terminals = await _seed_stores(uow, clock, terminal_key)
        await _seed_staff(uow, clock)
        await _seed_members(uow, clock)
        await _seed_offers(uow, clock)  # first: today's offers go into an empty catalogue
        history_due = await claim_history(uow, now, DEMO_TIME_ZONE)
    if history_due:
        log.info("seeding the demo members' year of history (once; about 20 s)")
        recorded = await seed_history(
            db,
            now,
            time_zone=DEMO_TIME_ZONE,
            seed=DEMO_RANDOM_SEED,
            store_codes=[store.code for store in DEMO_STORES],
            member_domain=DEMO_EMAIL_DOMAIN,
            marketer_email=MARKETER_EMAIL,
        )
        log.info("demo history seeded", extra={"recorded": recorded})
    return DemoCredentials(
        admin_email=ADMIN_EMAIL,
        marketer_email=MARKETER_EMAIL,
        staff_password=DEMO_PASSWORD,
        member_email=demo_member_email(1),
        member_password=DEMO_PASSWORD,
        terminals=terminals,
    )


def demo_member_email(number: int) -> str:
    return f"member{number:03d}@{DEMO_EMAIL_DOMAIN}"


async def _seed_stores(uow: UnitOfWork, clock: Clock, terminal_key: SigningKey) -> list[DemoTerminal]:
    """Each missing store with its one POS terminal; a store that already exists is not given another."""
    existing = await _already_present(uow, Store.code, [store.code for store in DEMO_STORES])
    terminals: list[DemoTerminal] = []
    for demo in DEMO_STORES:
        if demo.code in existing:
            continue
        store = await create_store(
            uow,
            clock,
            StoreDraft(
                code=demo.code,
                name=f"{DEMO_BRAND} {demo.district}店",
                address=demo.address,
                latitude=demo.latitude,
                longitude=demo.longitude,
                time_zone=DEMO_TIME_ZONE,
                check_in_radius_m=demo.check_in_radius_m,
            ),
        )
        credentials = await create_terminal(uow, clock, terminal_key, store.id, TerminalDraft(name="レジ1"))
        terminals.append(DemoTerminal(credentials.key_id, credentials.secret, demo.code))
    return terminals


async def _seed_staff(uow: UnitOfWork, clock: Clock) -> None:
    wanted = {
        ADMIN_EMAIL: ("石田 恵美", StaffRole.ADMIN),
        MARKETER_EMAIL: ("森本 健", StaffRole.MARKETER),
    }
    existing = await _already_present(uow, Staff.email, list(wanted))
    for email, (display_name, role) in wanted.items():
        if email not in existing:
            await create_staff(uow, clock, email, DEMO_PASSWORD, display_name, role)


async def _seed_members(uow: UnitOfWork, clock: Clock) -> None:
    """Missing demo members, bulk-inserted with one shared password hash.

    Going through sign-up would hash 300 times (about 15 s of argon2); one hash of the one demo
    password is as valid for every row. Names, join dates and ids come from a fixed seed, so every
    run describes the same people, and each id carries its member's join time like a real one would.
    """
    now = clock.now()
    # Deterministic demo data, not a secret: the standard generator is the right tool.
    rng = random.Random(DEMO_RANDOM_SEED)  # noqa: S311
    people = [
        (
            demo_member_email(number),
            f"{rng.choice(FAMILY_NAMES)} {rng.choice(GIVEN_NAMES)}",
            now - DEMO_HISTORY * rng.random(),
        )
        for number in range(1, DEMO_MEMBER_COUNT + 1)
    ]
    existing = await _already_present(uow, Member.email, [email for email, _, _ in people])
    missing = [person for person in people if person[0] not in existing]
    if not missing:
        return
    password_hash = await asyncio.to_thread(hash_password, DEMO_PASSWORD)
    ids = [seeded_id(f"{DEMO_RANDOM_SEED}:{email}", joined_at) for email, _, joined_at in missing]
    rows = [
        {
            "id": member_id,
            "card_number": new_card_number(),
            "email": email,
            "password_hash": password_hash,
            "display_name": display_name,
            "time_zone": DEMO_TIME_ZONE,
            "locale": "ja-JP",
            "created_at": joined_at,
            "updated_at": joined_at,
        }
        for member_id, (email, display_name, joined_at) in zip(ids, missing, strict=True)
    ]
    await uow.session.execute(insert(Member), rows)
    # One phone each, registered for push (as the app does on its first start), so a campaign made in
    # the demo console reaches the local FCM server; about one in five declined notifications.
    await uow.session.execute(
        insert(MemberDevice),
        [
            {
                "member_id": member_id,
                "slot": 0,
                "secret_salt": new_device_salt(),
                "created_at": now,
                "push_kind": "fid",
                "push_address": f"demo-fid-{member_id.hex}",
                "platform": rng.choice(("ios", "android")),
                "app_version": "3.2.0",
                "locale": "ja-JP",
                "notification_permission": "denied" if rng.random() < DEMO_PUSH_DECLINED else "granted",
                "push_refreshed_at": now,
                "last_seen_at": now,
            }
            for member_id in ids
        ],
    )


DEMO_OFFERS = (
    ("Linen week", BonusPoints(points=100, category="linen"), "100 bonus points on linen", "Any linen item."),
    ("Double points", Multiplier(percent=200), "Double points on your basket", "Points x2 on everything."),
    (
        "Welcome back",
        VisitBonus(points=50, min_spend_minor=1_000),
        "50 points for a visit",
        "From 1,000 yen.",
    ),
    (
        "Stationery coupon",
        AmountOff(amount_off_minor=300, min_spend_minor=2_000),
        "300 yen off",
        "From 2,000 yen.",
    ),
)


async def _seed_offers(uow: UnitOfWork, clock: Clock) -> None:
    """A few offers active for a month, so the app's offer list is not empty (into an empty catalogue)."""
    if await uow.session.scalar(select(func.count()).select_from(Offer)):
        return
    now = clock.now()
    program = Program()
    rules = CatalogueRules(program.time_zone, program.earning.point_value_minor, OfferProgram())
    today = now.astimezone(ZoneInfo(program.time_zone)).date()
    for name, terms, title, body in DEMO_OFFERS:
        draft = OfferDraft(
            name=name,
            terms=terms,
            title=title,
            body=body,
            valid_from=today,
            valid_until=today + timedelta(days=30),
        )
        offer = await create_offer(uow, rules, draft, now)
        await change_state(uow, rules, offer.id, OfferState.ACTIVE, now)


async def _already_present(
    uow: UnitOfWork, column: InstrumentedAttribute[Any], values: list[str]
) -> set[str]:
    """Which of `values` the unique `column` already holds: those rows are not seeded again."""
    return set((await uow.session.execute(select(column).where(column.in_(values)))).scalars())
