"""The demo's planned year: the same seed plans the same year, and each kind of member behaves as named."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from commands.demo_people import DemoMember, Person, Segment, people, seeded_id
from commands.demo_plan import LATEST_BEFORE_NOW, AppSession, Joined, Visit, plan

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
START = NOW - timedelta(days=365)
ZONE = "Asia/Tokyo"
STORES = ["TKY-GINZA", "TKY-SHINJUKU", "TKY-SHIBUYA", "OSA-UMEDA", "OSA-NAMBA"]


def demo_members(count: int = 300) -> list[DemoMember]:
    return [
        DemoMember(number, seeded_id(f"test:{number}", NOW), NOW - timedelta(days=730 * number / count))
        for number in range(1, count + 1)
    ]


def everyone(seed: int = 7) -> list[Person]:
    return people(demo_members(), STORES, ZONE, NOW, seed)


def test_the_same_seed_plans_the_same_people_and_year_and_another_seed_does_not() -> None:
    first, again, other = everyone(7), everyone(7), everyone(8)
    assert first == again
    assert [plan(p, START, NOW, ZONE, 7) for p in first] == [plan(p, START, NOW, ZONE, 7) for p in again]
    assert [p.segment for p in first] != [p.segment for p in other]


def test_lapsing_members_bought_earlier_and_nothing_since_they_went_quiet() -> None:
    lapsing = [p for p in everyone() if p.segment is Segment.LAPSING]
    assert len(lapsing) == 45  # 15 % of 300
    for person in lapsing:
        assert person.quiet_from is not None
        actions = plan(person, START, NOW, ZONE, 7)
        assert all(a.at < person.quiet_from for a in actions)
        assert any(isinstance(a, Visit) and a.basket for a in actions)
        assert timedelta(days=65) <= NOW - person.quiet_from <= timedelta(days=120)


def test_loyal_members_shop_more_than_regular_ones_and_browsers_never_buy() -> None:
    def sales(person: Person) -> int:
        return sum(isinstance(a, Visit) and bool(a.basket) for a in plan(person, START, NOW, ZONE, 7))

    by_segment: dict[Segment, list[int]] = {}
    for person in everyone():
        by_segment.setdefault(person.segment, []).append(sales(person))
    mean = {segment: sum(counts) / len(counts) for segment, counts in by_segment.items()}
    assert mean[Segment.LOYAL] > 2 * mean[Segment.REGULAR] > 0
    assert mean[Segment.BROWSER] == 0


def test_a_plan_stays_within_the_year_and_after_joining_and_stores_are_of_the_home_city() -> None:
    for person in everyone():
        actions = plan(person, START, NOW, ZONE, 7)
        assert sum(isinstance(a, Joined) for a in actions) == 1
        for action in actions:
            assert action.at < NOW - LATEST_BEFORE_NOW
            if not isinstance(action, Joined):
                assert action.at >= max(START, person.joined_at)
            if isinstance(action, Visit):
                assert action.store.split("-")[0] == person.home.split("-")[0]
            if isinstance(action, AppSession):
                assert action.person == person.number


def test_sale_days_bring_members_in() -> None:
    day = (NOW - timedelta(days=35)).date()
    busy = {day, day + timedelta(days=1), day + timedelta(days=2)}

    def visits_on_sale_days(sale_days: set[date]) -> int:
        return sum(
            isinstance(a, Visit) and a.at.date() in busy  # shopping hours in Tokyo: the same date in UTC
            for p in everyone()
            for a in plan(p, START, NOW, ZONE, 7, sale_days)
        )

    assert visits_on_sale_days(busy) > 2 * visits_on_sale_days(set())


def test_seeded_ids_are_uuid7_of_their_time_and_the_same_for_the_same_label() -> None:
    at = datetime(2025, 4, 1, 12, 0, 0, 123000, tzinfo=UTC)
    member = seeded_id("20240401:member001@demo.tsunagari.jp", at)
    assert member == seeded_id("20240401:member001@demo.tsunagari.jp", at)
    assert member != seeded_id("20240401:member002@demo.tsunagari.jp", at)
    assert (member.version, member.variant) == (7, uuid.RFC_4122)
    assert member.int >> 80 == int(at.timestamp() * 1000)
