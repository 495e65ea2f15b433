"""A year of behaviour for the demo retailer's members, recorded through the product's own use cases.

`seed_demo` first claims the history (in its transaction, under its advisory lock): it creates the offers
the year ran, valid back then, which is also the mark that the history was seeded, so a second seeding
(or a concurrent one) writes none. Then `seed_history` replays the year on a simulated clock:

- the members' plan (commands.demo_people: loyal, regular, occasional, lapsing, browsing and new
  members) is carried out week by week by two lanes of members at once (commands.demo_shoppers), each
  action through its use case at the moment it happened;
- between weeks, the worker's jobs run at that moment: points expiry and policy learning at each month's
  start, and the past push campaign on its day (commands.demo_campaign), whose replies join the plan;
- at the end the offers of the year are ended and the audience profiles and population engagement are
  refreshed as of now, so the console's segments are current at once.

The same seed and the same `now` replay the same year: same counts of everything, same sales per member.
A seeding that fails half-way keeps what it recorded and is not resumed (the offers mark the history as
seeded): the demo is for trying things out, so start it again from an empty data directory.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import uuid
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
from sqlalchemy import select

from accounts.tables import Member, Staff
from commands.demo_campaign import SCHEDULED_BEFORE, WINDOW_HOURS, campaign_draft, send_past_campaign
from commands.demo_people import DemoMember, people, seeded_id
from commands.demo_plan import Action, action_order, plan
from commands.demo_shoppers import DemoStore, Lane, Programs, Shopper
from geofence.rules import CheckInPolicy
from infra.db import Database, UnitOfWork
from offers.catalogue import CatalogueRules, change_state, create_offer
from offers.learning import learn_rewards
from offers.program import OfferProgram
from offers.rules.terms import BonusPoints, Multiplier, OfferState, Terms, VisitBonus
from offers.schemas import OfferDraft
from offers.tables import Offer
from points.expiry import expire_due
from points.program import Program
from push.policy import PushPolicy
from push.profiles import refresh_profiles
from stores.tables import Store, Terminal
from timeline.population import refresh_population
from timeline.recording import fold_pending

# A year. (Points last a year to the month's end, so none of the year's have expired yet; the expiry
# job still runs as the worker runs it, at each month's start.)
HISTORY = timedelta(days=365)
CAMPAIGN_DAYS_AGO = 35
CAMPAIGN_SALE_DAYS = 3  # the campaign announces a linen sale from its day: busier stores for everyone
LANES = 2  # members recorded by this many transactions at once (the register's use case waits on I/O)
WEEK = timedelta(days=7)


class PastOffer(msgspec.Struct, frozen=True):
    opens_after_days: int  # days after the history starts
    days: int  # valid for
    name: str
    terms: Terms
    title: str
    body: str


# The offers of the year: one to three open at a time, all over before today's.
HISTORY_OFFERS = (
    PastOffer(
        10, 40, "Spring linen", BonusPoints(points=100, category="linen"),
        "100 points on linen", "Any linen.",
    ),
    PastOffer(
        40, 35, "Stationery week", Multiplier(percent=200, category="stationery"),
        "Double points on stationery", "All pens and notebooks.",
    ),
    PastOffer(
        90, 30, "Rainy season double points", Multiplier(percent=200),
        "Double points on everything", "Until the rain stops.",
    ),
    PastOffer(
        115, 45, "Summer visit bonus", VisitBonus(points=30, min_spend_minor=1_500),
        "30 points for a visit", "From 1,500 yen.",
    ),
    PastOffer(
        170, 40, "Kitchen and storage", BonusPoints(points=80, category="household"),
        "80 points on household", "Kitchen and storage.",
    ),
    PastOffer(
        205, 40, "Autumn apparel", BonusPoints(points=120, category="apparel"),
        "120 points on apparel", "Knits and shirts.",
    ),
    PastOffer(
        255, 45, "Pantry visit bonus", VisitBonus(points=40, min_spend_minor=3_000),
        "40 points for a visit", "From 3,000 yen.",
    ),
    PastOffer(
        315, 40, "Linen weeks", Multiplier(percent=150, category="linen"),
        "Linen earns 1.5x points", "Bed and table linen.",
    ),
)  # fmt: skip
HISTORY_MARK = HISTORY_OFFERS[0].name  # this offer exists: the history was seeded


def history_start(now: datetime) -> datetime:
    return now - HISTORY


async def claim_history(uow: UnitOfWork, now: datetime, time_zone: str) -> bool:
    """Create the year's offers, each drafted and activated a few days before it opened; False (and
    nothing written) when they exist: the history is seeded, or being seeded by whoever created them."""
    if await uow.session.scalar(select(Offer.id).where(Offer.name == HISTORY_MARK).limit(1)) is not None:
        return False
    program = Program()
    rules = CatalogueRules(program.time_zone, program.earning.point_value_minor, OfferProgram())
    first_day = history_start(now).astimezone(ZoneInfo(time_zone)).date()
    for past in HISTORY_OFFERS:
        valid_from = first_day + timedelta(days=past.opens_after_days)
        drafted_at = datetime.combine(valid_from - timedelta(days=3), time(10), ZoneInfo(time_zone))
        draft = OfferDraft(
            name=past.name,
            terms=past.terms,
            title=past.title,
            body=past.body,
            valid_from=valid_from,
            valid_until=valid_from + timedelta(days=past.days - 1),
        )
        offer = await create_offer(uow, rules, draft, drafted_at)
        await change_state(uow, rules, offer.id, OfferState.ACTIVE, drafted_at + timedelta(hours=1))
    return True


async def seed_history(
    db: Database,
    now: datetime,
    *,
    time_zone: str,
    seed: int,
    store_codes: list[str],
    member_domain: str,
    marketer_email: str,
) -> dict[str, int]:
    """Replay the year up to `now` (see the module docstring); returns what the lanes recorded.

    `store_codes`: the demo's stores, the most visited of each city first; `member_domain`: the demo
    members' email domain (member001@...).
    """
    start = history_start(now)
    programs = Programs(
        points=msgspec.structs.replace(Program(), allow_static_card_numbers=True),
        check_ins=CheckInPolicy(),
        offers=OfferProgram(),
    )
    async with db.unit_of_work() as uow:
        members, cards = await _members(uow, member_domain)
        stores = await _stores(uow)
        offer_ends = await _offer_ends(uow)
        marketer = await _staff_id(uow, marketer_email)
    persons = people(members, [code for code in store_codes if code in stores], time_zone, now, seed)
    spend_lock = asyncio.Lock()
    lanes = [
        Lane(
            {p.number: Shopper(p, cards[p.number]) for p in persons if p.number % LANES == lane},
            stores,
            offer_ends,
            programs,
            np.random.default_rng([seed, lane]),
            spend_lock,
        )
        for lane in range(LANES)
    ]
    zone = ZoneInfo(time_zone)
    campaign_date = (now - timedelta(days=CAMPAIGN_DAYS_AGO)).astimezone(zone).date()
    campaign_day = datetime.combine(campaign_date, time(), zone)
    sale_days = {campaign_date + timedelta(days=days) for days in range(CAMPAIGN_SALE_DAYS)}
    queues: list[list[Action]] = [[] for _ in range(LANES)]
    for person in persons:
        queues[person.number % LANES] += plan(person, start, now, time_zone, seed, sale_days)
    for queue in queues:
        queue.sort(key=action_order)
    draft = campaign_draft(campaign_day, time_zone)
    campaign_at = campaign_day + timedelta(hours=WINDOW_HOURS[0]) - SCHEDULED_BEFORE
    month_starts = set(_month_starts(start, now, time_zone))
    for chunk_start, chunk_end in _chunks(start, now, sorted({*month_starts, campaign_at})):
        await fold_pending(db)  # what the worker keeps doing: the members' traits follow their events
        if chunk_start in month_starts:
            await expire_due(db, chunk_start)
            await learn_rewards(db, programs.offers, chunk_start)
        if chunk_start == campaign_at:
            replies = await send_past_campaign(
                db,
                staff_id=marketer,
                campaign_id=seeded_id(f"{seed}:campaign", campaign_at),
                draft=draft,
                program=programs.points,
                policy=PushPolicy(),
                people=persons,
                time_zone=time_zone,
                now=now,
                seed=seed,
            )
            for reply in replies:
                bisect.insort(queues[reply.person % LANES], reply, key=action_order)
        async with asyncio.TaskGroup() as lanes_at_work:  # one lane failing stops the other
            for lane, queue in zip(lanes, queues, strict=True):
                lanes_at_work.create_task(lane.run(db, _take_until(queue, chunk_end)))
    await _wrap_up(db, programs, now)
    recorded: dict[str, int] = {}
    for lane in lanes:
        for what, count in lane.recorded.items():
            recorded[what] = recorded.get(what, 0) + count
    return recorded


async def _wrap_up(db: Database, programs: Programs, now: datetime) -> None:
    """The year's offers ended when their dates ran out; the worker's jobs brought up to now."""
    points = programs.points
    rules = CatalogueRules(points.time_zone, points.earning.point_value_minor, programs.offers)
    async with db.unit_of_work() as uow:
        names = [past.name for past in HISTORY_OFFERS]
        rows = await uow.session.execute(
            select(Offer.id, Offer.ends_at).where(Offer.name.in_(names), Offer.state == OfferState.ACTIVE)
        )
        for offer_id, ends_at in list(rows):
            if ends_at <= now:
                await change_state(uow, rules, offer_id, OfferState.ENDED, ends_at)
    await expire_due(db, now)
    await fold_pending(db)
    await learn_rewards(db, programs.offers, now)
    await refresh_population(db, now)
    await refresh_profiles(db, programs.points, now)


def _take_until(queue: list[Action], end: datetime) -> list[Action]:
    """Remove and return the queue's actions before `end` (the queue is in time order)."""
    cut = bisect.bisect_left(queue, end, key=lambda action: action.at)
    taken = queue[:cut]
    del queue[:cut]
    return taken


def _chunks(start: datetime, now: datetime, events: list[datetime]) -> Iterator[tuple[datetime, datetime]]:
    """Weeks from `start`, also cut at each of `events` (so a job runs before what follows it); the first
    chunk takes everything before `start` too (joinings), the last everything up to `now`."""
    cuts = sorted({start + WEEK * weeks for weeks in range(1, (now - start) // WEEK + 1)} | set(events))
    cuts = [cut for cut in cuts if start < cut < now]
    bounds = [start, *cuts, now + WEEK]
    first = datetime.min.replace(tzinfo=start.tzinfo)
    for index, (chunk_start, chunk_end) in enumerate(itertools.pairwise(bounds)):
        yield (first if index == 0 else chunk_start), chunk_end


def _month_starts(start: datetime, now: datetime, time_zone: str) -> Iterator[datetime]:
    """The first instant of each local month in (start, now): when lots expire (Program: at month end)."""
    zone = ZoneInfo(time_zone)
    day = start.astimezone(zone).date().replace(day=1)
    while True:
        day = (day + timedelta(days=32)).replace(day=1)
        at = datetime.combine(day, time(), zone)
        if at >= now:
            return
        yield at


async def _members(uow: UnitOfWork, domain: str) -> tuple[list[DemoMember], dict[int, str]]:
    """The demo members (member001 ... in number order), and their card numbers."""
    rows = await uow.session.execute(
        select(Member.email, Member.id, Member.created_at, Member.card_number)
        .where(Member.email.like(f"member%@{domain}"), Member.erased_at.is_(None))
        .order_by(Member.email)
    )
    members, cards = [], {}
    for email, member_id, joined_at, card_number in rows:
        number = _member_number(email)
        if number is not None:
            members.append(DemoMember(number, member_id, joined_at))
            cards[number] = card_number
    return members, cards


def _member_number(email: str | None) -> int | None:
    local = (email or "").split("@")[0].removeprefix("member")
    return int(local) if local.isdigit() else None


async def _stores(uow: UnitOfWork) -> dict[str, DemoStore]:
    rows = await uow.session.execute(
        select(Store.code, Store.id, Terminal.id, Store.latitude, Store.longitude, Store.check_in_radius_m)
        .join(Terminal, Terminal.store_id == Store.id)
        .where(Store.archived_at.is_(None))
        .order_by(Store.code, Terminal.id)
    )
    stores: dict[str, DemoStore] = {}
    for code, store_id, terminal_id, latitude, longitude, radius_m in rows:
        stores.setdefault(code, DemoStore(store_id, terminal_id, latitude, longitude, radius_m))
    return stores


async def _offer_ends(uow: UnitOfWork) -> dict[uuid.UUID, datetime]:
    rows = await uow.session.execute(select(Offer.id, Offer.ends_at))
    return {offer_id: ends_at for offer_id, ends_at in rows}


async def _staff_id(uow: UnitOfWork, email: str) -> uuid.UUID:
    staff_id = await uow.session.scalar(select(Staff.id).where(Staff.email == email))
    assert staff_id is not None, "the demo's staff are seeded before its history"
    return staff_id
