"""Who the demo members are: loyal, regular, occasional, lapsing, browsing or new, with their stores,
hours, tastes and habits (what they do with them is planned by commands.demo_plan).

Pure: plain values and a seed in, so the same seed and the same `now` always make the same people.

Volumes are kept to what the product's use cases record in the time a first `serve` may take to seed
(for 300 members: about 600 sales, 120 check-ins, 200 offer lists and 3,000 app events in the year);
the shares of loyal, lapsing, new and dormant members make their health scores and lifecycle stages
differ as a marketer expects them to.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

import msgspec

LOYAL_SHARE = 0.1
LAPSING_SHARE = 0.15
NEW_MEMBER_DAYS = 45  # joined this recently: a new member, whatever else they would have been
LAPSED_DAYS = (65, 120)  # a lapsing member's last visit was this many days ago (at risk from 60 days)

EVERYDAY = ("stationery", "food", "household", "linen", "apparel", "cosmetics")
APP_HOURS = (7, 8, 12, 12, 13, 18, 19, 20, 20, 21, 22)  # local hours members habitually open the app
SHOP_HOURS = (11, 12, 13, 15, 17, 18, 19)  # local hours they habitually shop


class Segment(StrEnum):
    LOYAL = "loyal"
    REGULAR = "regular"
    OCCASIONAL = "occasional"
    LAPSING = "lapsing"  # active earlier in the year, gone quiet 65-120 days ago
    BROWSER = "browser"  # uses the app, has not bought yet
    NEW = "new"


class Habits(msgspec.Struct, frozen=True, kw_only=True):
    visits_per_30d: float  # store visits: a purchase, a check-in or both
    buys_share: float  # of visits, with a purchase
    check_in_share: float  # of visits, checked in by the app
    app_sessions_per_30d: float
    browse_offers_share: float  # of app sessions, the offer list opened
    offers_before_visit: float  # of store visits, the app's offers looked at (and one clipped) on the way
    clip_share: float  # of offer lists, one offer clipped
    lines: tuple[int, int]  # basket lines, fewest and most
    price_scale: float
    redeem_share: float  # of sales, paid partly with points (when the member has some)
    push_open_share: float
    push_buys_share: float  # of opened pushes, a purchase within the next days
    sale_day_visit_chance: float  # on each day of a store event (the campaign's sale)


HABITS: dict[Segment, Habits] = {
    Segment.LOYAL: Habits(
        visits_per_30d=0.75, buys_share=0.92, check_in_share=0.12,
        app_sessions_per_30d=1.0, browse_offers_share=0.05, offers_before_visit=0.3, clip_share=0.6,
        lines=(2, 4), price_scale=1.4, redeem_share=0.3,
        push_open_share=0.7, push_buys_share=0.7, sale_day_visit_chance=0.15,
    ),
    Segment.REGULAR: Habits(
        visits_per_30d=0.14, buys_share=0.92, check_in_share=0.08,
        app_sessions_per_30d=0.35, browse_offers_share=0.03, offers_before_visit=0.2, clip_share=0.5,
        lines=(1, 3), price_scale=1.0, redeem_share=0.2,
        push_open_share=0.5, push_buys_share=0.6, sale_day_visit_chance=0.05,
    ),
    Segment.OCCASIONAL: Habits(
        visits_per_30d=0.06, buys_share=1.0, check_in_share=0.1,
        app_sessions_per_30d=0.15, browse_offers_share=0.03, offers_before_visit=0.1, clip_share=0.3,
        lines=(1, 2), price_scale=0.9, redeem_share=0.1,
        push_open_share=0.25, push_buys_share=0.5, sale_day_visit_chance=0.03,
    ),
    Segment.LAPSING: Habits(
        visits_per_30d=0.2, buys_share=0.9, check_in_share=0.08,
        app_sessions_per_30d=0.4, browse_offers_share=0.03, offers_before_visit=0.15, clip_share=0.4,
        lines=(1, 3), price_scale=1.0, redeem_share=0.2,
        push_open_share=0.05, push_buys_share=0.0, sale_day_visit_chance=0.0,
    ),
    Segment.BROWSER: Habits(
        visits_per_30d=0.0, buys_share=0.0, check_in_share=0.0,
        app_sessions_per_30d=0.6, browse_offers_share=0.05, offers_before_visit=0.0, clip_share=0.3,
        lines=(1, 1), price_scale=1.0, redeem_share=0.0,
        push_open_share=0.3, push_buys_share=0.15, sale_day_visit_chance=0.0,
    ),
    Segment.NEW: Habits(
        visits_per_30d=0.9, buys_share=0.85, check_in_share=0.25,
        app_sessions_per_30d=1.6, browse_offers_share=0.1, offers_before_visit=0.3, clip_share=0.5,
        lines=(1, 3), price_scale=1.0, redeem_share=0.0,
        push_open_share=0.45, push_buys_share=0.6, sale_day_visit_chance=0.06,
    ),
}  # fmt: skip


class DemoMember(msgspec.Struct, frozen=True):
    number: int  # as in member001@...
    member_id: uuid.UUID
    joined_at: datetime


class Person(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    member_id: uuid.UUID
    joined_at: datetime
    segment: Segment
    home: str  # store code of the store they use most
    nearby: tuple[str, ...]  # the other stores of their city, where they sometimes shop
    app_hour: int  # local hour they usually open the app (and read a push)
    shop_hour: int
    categories: tuple[str, ...]  # what they mostly buy
    quiet_from: datetime | None  # lapsing: nothing from this moment on

    @property
    def habits(self) -> Habits:
        return HABITS[self.segment]


def seeded_rng(label: str) -> random.Random:
    """A generator seeded by `label` (a str seed is hashed with SHA-512: the same in every process)."""
    return random.Random(label)  # noqa: S311 - deterministic demo data, not a secret


def seeded_id(label: str, at: datetime) -> uuid.UUID:
    """A UUIDv7 of `at` (the layout of domain.ids.new_id) whose 74 random bits are drawn from `label`.

    The demo's members and past campaign get these, so the same seed makes the same ids, and with them
    the same control groups and variants (which hash member and campaign ids) on every replay.
    """
    random_bits = int.from_bytes(hashlib.sha256(label.encode()).digest()[:10], "big") >> 6
    value = (int(at.timestamp() * 1000) & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (random_bits >> 62) << 64
    value |= 0b10 << 62
    value |= random_bits & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def people(
    members: Sequence[DemoMember], stores: Sequence[str], time_zone: str, now: datetime, seed: int
) -> list[Person]:
    """Who each demo member is: their segment, stores, hours and tastes (member order in, same order out)."""
    rng = seeded_rng(f"{seed}:people")
    segments = _segments(members, now, rng)
    return [_person(member, segments[member.number], stores, now, rng) for member in members]


def _segments(members: Sequence[DemoMember], now: datetime, rng: random.Random) -> dict[int, Segment]:
    """Fixed shares of loyal and lapsing members among those who joined long enough ago; the newest are
    new; the rest mostly regular."""
    in_order = sorted(members, key=lambda m: m.number)
    new = {m.number for m in in_order if now - m.joined_at <= timedelta(days=NEW_MEMBER_DAYS)}
    lapsing_pool = [m.number for m in in_order if now - m.joined_at > timedelta(days=300)]
    lapsing = set(rng.sample(lapsing_pool, min(len(lapsing_pool), round(LAPSING_SHARE * len(members)))))
    loyal_pool = [
        m.number for m in in_order if now - m.joined_at > timedelta(days=120) and m.number not in lapsing
    ]
    loyal = set(rng.sample(loyal_pool, min(len(loyal_pool), round(LOYAL_SHARE * len(members)))))
    segments: dict[int, Segment] = {}
    for member in in_order:
        if member.number in new:
            segments[member.number] = Segment.NEW
        elif member.number in lapsing:
            segments[member.number] = Segment.LAPSING
        elif member.number in loyal:
            segments[member.number] = Segment.LOYAL
        else:
            roll = rng.random()
            segments[member.number] = (
                Segment.REGULAR if roll < 0.45 else Segment.OCCASIONAL if roll < 0.75 else Segment.BROWSER
            )
    return segments


def _person(
    member: DemoMember, segment: Segment, stores: Sequence[str], now: datetime, rng: random.Random
) -> Person:
    # Two members in three live in the first city listed (Tokyo); the stores listed first in each city
    # draw more of them.
    cities = list(dict.fromkeys(code.split("-")[0] for code in stores))
    city = cities[0] if rng.random() < 0.65 or len(cities) == 1 else rng.choice(cities[1:])
    city_stores = [code for code in stores if code.startswith(f"{city}-")]
    home = city_stores[int(rng.expovariate(1 / 4)) % len(city_stores)]
    quiet_from = None
    if segment is Segment.LAPSING:
        quiet_from = now - timedelta(days=rng.uniform(*LAPSED_DAYS))
    return Person(
        number=member.number,
        member_id=member.member_id,
        joined_at=member.joined_at,
        segment=segment,
        home=home,
        nearby=tuple(code for code in city_stores if code != home),
        app_hour=rng.choice(APP_HOURS),
        shop_hour=rng.choice(SHOP_HOURS),
        categories=tuple(rng.sample(EVERYDAY, 2)),
        quiet_from=quiet_from,
    )
