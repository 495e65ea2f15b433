"""Traits after a scripted sequence of events, against values worked out by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.interactions import InteractionKind as K
from timeline.engagement import HOURS_PER_WEEK, hour_of_week
from timeline.recording import ActivitySums, add_to_sums
from timeline.rules import Properties
from timeline.tables import NO_STORE
from timeline.traits import (
    DailyDelta,
    LifecycleStage,
    TraitCounters,
    compute_traits,
    daily_delta,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday
MEMBER = uuid.UUID("00000000-0000-7000-8000-0000000000aa")
GINZA = uuid.UUID("00000000-0000-7000-8000-000000000001")
UMEDA = uuid.UUID("00000000-0000-7000-8000-000000000002")
Script = list[tuple[K, datetime, uuid.UUID | None, Properties]]

NO_POPULATION = [0] * HOURS_PER_WEEK


def days_ago(days: int, hour: int = 12) -> datetime:
    return (NOW - timedelta(days=days)).replace(hour=hour)


SCRIPT: Script = [
    (K.MEMBER_JOINED, days_ago(200), None, {}),
    (K.PURCHASED, days_ago(100), UMEDA, {"amount_minor": 9_000, "categories": ["stationery"]}),
    (K.CHECKED_IN, days_ago(40), GINZA, {}),
    (K.PURCHASED, days_ago(40), GINZA, {"amount_minor": 3_000, "categories": ["food", "stationery"]}),
    (K.PURCHASED, days_ago(10), GINZA, {"amount_minor": 5_000, "categories": ["stationery"]}),
    (K.REFUNDED, days_ago(9), GINZA, {"amount_minor": 1_000}),
    (K.CHECKED_IN, days_ago(3), UMEDA, {}),
    (K.PUSH_OPENED, days_ago(2, hour=11), None, {}),  # 20:00 in Tokyo
    (K.PUSH_OPENED, days_ago(9, hour=11), None, {}),
    (K.PUSH_OPENED, days_ago(5, hour=1), None, {}),
    (K.APP_OPENED, days_ago(1), None, {}),
]


def fold(script: Script) -> tuple[TraitCounters, list[DailyDelta]]:
    """Fold a script the way recording does: counters per event, sums per (day, store)."""
    counters = TraitCounters()
    sums: ActivitySums = {}
    for kind, at, store, properties in script:
        counters.apply(kind, at, properties)
        add_to_sums(sums, MEMBER, daily_delta(kind, at, store, properties))
    activity = [
        DailyDelta(day=day, store_id=None if store_key == NO_STORE else store_key, **columns)
        for (_, day, store_key), columns in sums.items()
    ]
    return counters, activity


def test_scripted_sequence_gives_hand_computed_traits() -> None:
    counters, activity = fold(SCRIPT)
    traits = compute_traits(counters, activity, NOW, "Asia/Tokyo", NO_POPULATION)

    assert traits.joined_at == days_ago(200)
    assert traits.last_seen_at == days_ago(1)
    assert traits.last_purchase_at == days_ago(10)
    assert traits.days_since_last_purchase == 10
    windows = {w.days: (w.visits, w.purchases, w.spend_minor) for w in traits.windows}
    # 30 days: visit days 10 ago (purchase) and 3 ago (check-in); 5,000 spent less the 1,000 refund.
    assert windows[30] == (2, 1, 4_000)
    # 90 days: plus day 40 (check-in and purchase the same day count as one visit day).
    assert windows[90] == (3, 2, 7_000)
    assert windows[365] == (4, 3, 16_000)
    assert traits.average_basket_minor == (9_000 + 3_000 + 5_000) // 3
    assert (traits.lifetime_purchases, traits.lifetime_spend_minor, traits.lifetime_refunded_minor) == (
        3,
        17_000,
        1_000,
    )
    # Ginza: visits on days 40 and 10; Umeda: days 100 and 3; tie on count, Umeda visited more recently.
    assert traits.favourite_store_id == UMEDA
    assert traits.categories == [("stationery", 3), ("food", 1)]
    assert sum(traits.push_open_hours_utc) == 3
    assert traits.push_open_hours_utc[hour_of_week(days_ago(2, hour=11))] == 2  # both Saturdays, 11:00 UTC
    assert traits.preferred_push_hour_local == 20  # two opens at 11:00 UTC = 20:00 JST
    assert sum(traits.app_open_hours_utc) == 1
    # R: 10 days -> 5 (within 14). F: 3 purchases in a year -> 2 (thresholds 1, 2, 4, ...).
    # M: 16,000 -> 2 (thresholds 1, 5,000, 20,000, ...).
    assert (traits.rfm.recency, traits.rfm.frequency, traits.rfm.monetary) == (5, 2, 2)
    components = {c.name: c.score for c in traits.health_components}
    # recency: last visit 3 days ago (<= 7) -> 100. frequency: 3 visit days of 6 -> 50.
    # monetary: 7,000 of 30,000 -> 23. trend: 7 interactions in 30 days vs 2 in the 60 before -> 100.
    assert components == {"recency": 100, "frequency": 50, "monetary": 23, "engagement_trend": 100}
    assert traits.health_score == (100 * 35 + 50 * 25 + 23 * 20 + 100 * 20 + 50) // 100 == 72
    assert traits.lifecycle_stage is LifecycleStage.ACTIVE


def test_order_of_events_does_not_matter() -> None:
    forward = compute_traits(*fold(SCRIPT), NOW, "Asia/Tokyo", NO_POPULATION)
    backward = compute_traits(*fold(list(reversed(SCRIPT))), NOW, "Asia/Tokyo", NO_POPULATION)
    assert forward == backward


def test_lifecycle_stages() -> None:
    def stage(script: Script) -> LifecycleStage:
        return compute_traits(*fold(script), NOW, "Asia/Tokyo", NO_POPULATION).lifecycle_stage

    assert stage([(K.MEMBER_JOINED, days_ago(5), None, {})]) is LifecycleStage.NEW
    joined: tuple[K, datetime, uuid.UUID | None, Properties] = (K.MEMBER_JOINED, days_ago(400), None, {})
    assert stage([joined, (K.PURCHASED, days_ago(60), GINZA, {})]) is LifecycleStage.ACTIVE
    assert stage([joined, (K.PURCHASED, days_ago(61), GINZA, {})]) is LifecycleStage.AT_RISK
    assert stage([joined, (K.CHECKED_IN, days_ago(181), GINZA, {})]) is LifecycleStage.LAPSED
    assert stage([joined, (K.APP_OPENED, days_ago(20), None, {})]) is LifecycleStage.AT_RISK
    assert stage([joined]) is LifecycleStage.LAPSED


def test_a_member_with_no_history() -> None:
    traits = compute_traits(TraitCounters(), [], NOW, "Asia/Tokyo", NO_POPULATION)
    assert traits.health_score == 0
    assert traits.days_since_last_purchase is None
    assert (traits.rfm.recency, traits.rfm.frequency, traits.rfm.monetary) == (0, 0, 0)
    assert traits.favourite_store_id is None
    assert traits.preferred_push_hour_local is None


def test_messages_sent_to_a_member_are_not_the_members_activity() -> None:
    counters = TraitCounters()
    sent = NOW - timedelta(days=1)
    for kind in (K.PUSH_SENT, K.PUSH_SUPPRESSED, K.OFFER_DECIDED):
        counters.apply(kind, sent, {})
        assert daily_delta(kind, sent, None, {}).interactions == 0
    assert counters.last_seen_at is None
    assert compute_traits(counters, [], NOW, "Asia/Tokyo", NO_POPULATION).lifecycle_stage == "lapsed"
