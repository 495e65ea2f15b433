"""The demo members' year, planned: what each does, when (visits and sales, returns, app sessions, offer
lists, replies to a push), as a time-ordered list of actions.

Pure: a person (commands.demo_people), the year's bounds and a seed in, the actions out; the same seed
and the same `now` always plan the same year. commands.demo_shoppers carries the actions out through
the product's use cases, commands.demo_history in time order.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec

from commands.demo_people import Person, Segment, seeded_rng

RETURN_SHARE = 0.015  # of sales, one line brought back a few days later
LATEST_BEFORE_NOW = timedelta(minutes=10)  # nothing is planned closer to the seeding than this

# category -> (lowest, highest) unit price in yen; prices end in 0 as on a real shelf
PRICES: dict[str, tuple[int, int]] = {
    "stationery": (150, 1_200),
    "food": (190, 890),
    "household": (390, 2_990),
    "linen": (1_490, 7_990),
    "apparel": (1_990, 6_990),
    "cosmetics": (490, 2_490),
    "furniture": (4_990, 29_900),
}
CONTENT = (
    "lookbook-spring",
    "linen-care-guide",
    "stationery-picks",
    "storage-ideas",
    "recipe-curry",
    "aroma-diffuser-howto",
    "autumn-knit",
    "kitchen-basics",
)


class Line(msgspec.Struct, frozen=True):
    sku: str
    category: str
    quantity: int
    unit_price_minor: int


class Joined(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    person: int


class AppSession(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    person: int
    contents: tuple[str, ...]  # content viewed, a few seconds apart
    browse_offers: bool
    clip_roll: float  # below the member's clip share: they clip one offer of the list


class Visit(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime  # at the register (the check-in is a few minutes earlier)
    person: int
    store: str
    check_in: bool
    basket: tuple[Line, ...]  # empty: a visit without buying
    receipt: str
    redeem_roll: float  # below the member's redeem share: they pay partly with points


class Return(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    person: int
    store: str
    receipt: str
    refund_receipt: str
    line_no: int


class PushReply(msgspec.Struct, frozen=True, kw_only=True):
    """What the member's app reports of a campaign's message: received, and opened (or not)."""

    at: datetime  # received
    person: int
    campaign_id: uuid.UUID
    delivery_id: str
    opened_at: datetime | None


Action = Joined | AppSession | Visit | Return | PushReply


def action_order(action: Action) -> tuple[datetime, int]:
    return action.at, action.person


def plan(
    person: Person,
    start: datetime,
    now: datetime,
    time_zone: str,
    seed: int,
    busy_days: Collection[date] = (),
) -> list[Action]:
    """Everything the member does from `start` (or their joining) until shortly before `now`.

    `busy_days`: a store event (the campaign's sale days) draws members in more than usual.
    """
    rng = seeded_rng(f"{seed}:plan:{person.number}")
    zone = ZoneInfo(time_zone)
    habits = person.habits
    end = min(person.quiet_from or now, now - LATEST_BEFORE_NOW)
    actions: list[Action] = [Joined(at=person.joined_at, person=person.number)]
    sales = 0
    for day in _days(max(person.joined_at, start), end, zone):
        chance = habits.visits_per_30d / 30 * (1.5 if day.weekday() >= 5 else 0.8)
        if day in busy_days:
            chance = max(chance, habits.sale_day_visit_chance)
        if rng.random() < chance:
            sales += 1
            visit = _visit(person, day, zone, rng, sales)
            actions.append(visit)
            if rng.random() < habits.offers_before_visit:
                on_the_way = visit.at - timedelta(minutes=rng.uniform(20, 150))
                actions.append(msgspec.structs.replace(_session(person, on_the_way, rng), browse_offers=True))
        if rng.random() < habits.app_sessions_per_30d / 30:
            actions.append(_session(person, _at(day, person.app_hour, 0.7, zone, rng), rng))
    if person.segment is Segment.NEW:
        actions.append(_session(person, person.joined_at + timedelta(minutes=3), rng))
        if rng.random() < 0.7:
            first_day = (person.joined_at + timedelta(days=rng.randint(0, 3))).astimezone(zone).date()
            sales += 1
            actions.append(_visit(person, first_day, zone, rng, sales, buys=True))
    if person.quiet_from is not None:  # the last visit before going quiet
        last_day = (person.quiet_from - timedelta(days=rng.randint(1, 10))).astimezone(zone).date()
        sales += 1
        actions.append(_visit(person, last_day, zone, rng, sales, buys=True))
    begin = max(start, person.joined_at)
    kept = [a for a in actions if a.at < end and (isinstance(a, Joined) or a.at >= begin)]
    kept += _returns(person, [a for a in kept if isinstance(a, Visit) and a.basket], end, rng)
    return sorted(kept, key=action_order)


def _days(begin: datetime, end: datetime, zone: ZoneInfo) -> Iterator[date]:
    day, last = begin.astimezone(zone).date(), end.astimezone(zone).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _at(day: date, hour: int, spread_h: float, zone: ZoneInfo, rng: random.Random) -> datetime:
    """About `hour` (local) on `day`, within the day."""
    minutes = min(max(hour * 60 + rng.gauss(0, spread_h * 60), 6 * 60), 23 * 60 + 50)
    return datetime.combine(day, time(), zone) + timedelta(minutes=int(minutes), seconds=rng.randint(0, 59))


def shopping_time(day: date, hour: int, zone: ZoneInfo, rng: random.Random) -> datetime:
    """About `hour` on `day`, while the stores are open (10:00-21:00)."""
    minutes = min(max(hour * 60 + rng.gauss(0, 75), 10 * 60 + 15), 20 * 60 + 45)
    return datetime.combine(day, time(), zone) + timedelta(minutes=int(minutes), seconds=rng.randint(0, 59))


def _visit(
    person: Person, day: date, zone: ZoneInfo, rng: random.Random, sale_no: int, *, buys: bool = False
) -> Visit:
    habits = person.habits
    store = person.home if not person.nearby or rng.random() < 0.75 else rng.choice(person.nearby)
    buying = buys or rng.random() < habits.buys_share
    return Visit(
        at=shopping_time(day, person.shop_hour, zone, rng),
        person=person.number,
        store=store,
        check_in=not buying or rng.random() < habits.check_in_share,
        basket=basket(person, rng) if buying else (),
        receipt=f"DEMO-{day:%Y%m%d}-{person.number:03d}-{sale_no}",
        redeem_roll=rng.random(),
    )


def basket(person: Person, rng: random.Random) -> tuple[Line, ...]:
    habits = person.habits
    lines = []
    for _ in range(rng.randint(*habits.lines)):
        category = rng.choice(person.categories) if rng.random() < 0.7 else rng.choice(tuple(PRICES))
        low, high = PRICES[category]
        price = round(rng.uniform(low, high) * habits.price_scale / 10) * 10
        quantity = rng.randint(1, 3) if category in ("food", "stationery") else 1
        lines.append(Line(f"{category[:3].upper()}-{rng.randint(1, 60):03d}", category, quantity, price))
    return tuple(lines)


def _session(person: Person, at: datetime, rng: random.Random) -> AppSession:
    habits = person.habits
    return AppSession(
        at=at,
        person=person.number,
        contents=tuple(rng.sample(CONTENT, rng.choice((0, 0, 0, 0, 1, 2)))),
        browse_offers=rng.random() < habits.browse_offers_share,
        clip_roll=rng.random(),
    )


def _returns(person: Person, sales: list[Visit], end: datetime, rng: random.Random) -> list[Action]:
    returns: list[Action] = []
    for sale in sales:
        if rng.random() >= RETURN_SHARE:
            continue
        at = sale.at + timedelta(days=rng.randint(2, 9), hours=rng.uniform(-2, 2))
        if at < end:
            returns.append(
                Return(
                    at=at,
                    person=person.number,
                    store=sale.store,
                    receipt=sale.receipt,
                    refund_receipt=f"{sale.receipt}-R",
                    line_no=rng.randint(1, len(sale.basket)),
                )
            )
    return returns


def after_push(
    person: Person,
    campaign_id: uuid.UUID,
    delivery_id: str,
    received_at: datetime,
    time_zone: str,
    now: datetime,
    seed: int,
) -> list[Action]:
    """The member's reply to a campaign's message: opened a few minutes later (or not), and, for some
    of those who opened it, a visit to their store within the next days."""
    rng = seeded_rng(f"{seed}:push:{campaign_id}:{person.number}")
    habits = person.habits
    opened = rng.random() < habits.push_open_share
    opened_at = received_at + timedelta(minutes=rng.uniform(1, 40)) if opened else None
    actions: list[Action] = [
        PushReply(
            at=received_at + timedelta(seconds=2),
            person=person.number,
            campaign_id=campaign_id,
            delivery_id=delivery_id,
            opened_at=opened_at,
        )
    ]
    if opened_at is not None and rng.random() < habits.push_buys_share:
        zone = ZoneInfo(time_zone)
        day = (opened_at + timedelta(hours=rng.uniform(2, 48))).astimezone(zone).date()
        visit = _visit(person, day, zone, rng, 900 + rng.randint(0, 99), buys=True)
        visit = msgspec.structs.replace(visit, store=person.home, check_in=True)
        if opened_at < visit.at < min(opened_at + timedelta(hours=70), now - LATEST_BEFORE_NOW):
            actions.append(visit)
    return actions
