"""Member traits from timeline events: pure functions, so incremental updates and full rebuilds agree.

Two things are kept per member as events arrive, both order-independent (sums, minima, maxima):
- `TraitCounters`: lifetime facts (first/last seen, purchases, spend, categories, hour-of-week histograms);
- daily activity rows (`DailyDelta` summed per UTC day and store), which the 30/90/365-day windows read.
`compute_traits` turns both into the traits a marketer sees, as of a given moment.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

import msgspec

from domain.interactions import AMOUNT_MINOR, CATEGORIES, OUTREACH_KINDS, InteractionKind
from timeline.engagement import HOURS_PER_WEEK, BestHour, best_hour, engagement, hour_of_week, local_hours
from timeline.rules import Properties

WINDOWS_DAYS = (30, 90, 365)
_K = InteractionKind
_VISIT_KINDS = frozenset({_K.PURCHASED, _K.CHECKED_IN})


def _amount(properties: Properties) -> int:
    value = properties.get(AMOUNT_MINOR, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _categories(properties: Properties) -> list[str]:
    value = properties.get(CATEGORIES, [])
    return value if isinstance(value, list) else []


class TraitCounters(msgspec.Struct, kw_only=True):
    joined_at: datetime | None = None
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    last_purchase_at: datetime | None = None
    last_visit_at: datetime | None = None
    lifetime_purchases: int = 0
    lifetime_spend_minor: int = 0
    lifetime_refunded_minor: int = 0
    categories: dict[str, int] = msgspec.field(default_factory=dict)
    push_open_hours: list[int] = msgspec.field(default_factory=lambda: [0] * HOURS_PER_WEEK)
    app_open_hours: list[int] = msgspec.field(default_factory=lambda: [0] * HOURS_PER_WEEK)
    check_in_hours: list[int] = msgspec.field(default_factory=lambda: [0] * HOURS_PER_WEEK)

    def apply(self, kind: InteractionKind, occurred_at: datetime, properties: Properties) -> None:
        """Fold one event in. Commutative, so late and out-of-order events give the same result."""
        if kind in OUTREACH_KINDS:
            return
        self.first_seen_at = _earliest(self.first_seen_at, occurred_at)
        self.last_seen_at = _latest(self.last_seen_at, occurred_at)
        if kind is _K.MEMBER_JOINED:
            self.joined_at = _earliest(self.joined_at, occurred_at)
        if kind in _VISIT_KINDS:
            self.last_visit_at = _latest(self.last_visit_at, occurred_at)
        if kind is _K.PURCHASED:
            self.last_purchase_at = _latest(self.last_purchase_at, occurred_at)
            self.lifetime_purchases += 1
            self.lifetime_spend_minor += _amount(properties)
            for category in _categories(properties):
                self.categories[category] = self.categories.get(category, 0) + 1
        elif kind is _K.REFUNDED:
            self.lifetime_refunded_minor += _amount(properties)
        elif kind is _K.PUSH_OPENED:
            self.push_open_hours[hour_of_week(occurred_at)] += 1
        elif kind is _K.APP_OPENED:
            self.app_open_hours[hour_of_week(occurred_at)] += 1
        elif kind is _K.CHECKED_IN:
            self.check_in_hours[hour_of_week(occurred_at)] += 1

    def engagement_hours(self) -> list[int]:
        return engagement(self.app_open_hours, self.push_open_hours, self.check_in_hours)


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _latest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


class DailyDelta(msgspec.Struct, frozen=True, kw_only=True):
    """What one event adds to its member's activity row for (UTC day, store)."""

    day: date
    store_id: uuid.UUID | None
    interactions: int = 1
    purchases: int = 0
    spend_minor: int = 0
    refunded_minor: int = 0
    check_ins: int = 0
    app_opens: int = 0
    push_opens: int = 0


def daily_delta(
    kind: InteractionKind, occurred_at: datetime, store_id: uuid.UUID | None, properties: Properties
) -> DailyDelta:
    return DailyDelta(
        day=occurred_at.astimezone(UTC).date(),
        store_id=store_id,
        interactions=int(kind not in OUTREACH_KINDS),
        purchases=int(kind is _K.PURCHASED),
        spend_minor=_amount(properties) if kind is _K.PURCHASED else 0,
        refunded_minor=_amount(properties) if kind is _K.REFUNDED else 0,
        check_ins=int(kind is _K.CHECKED_IN),
        app_opens=int(kind is _K.APP_OPENED),
        push_opens=int(kind is _K.PUSH_OPENED),
    )


DailyActivity = DailyDelta  # a stored row has the same fields as the sum of its deltas


class TraitPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Score thresholds, in the program currency's minor units where money is involved (defaults: JPY)."""

    recency_days: tuple[int, ...] = (14, 30, 90, 180)  # R5 within 14 days ... R1 beyond 180
    frequency_purchases: tuple[int, ...] = (1, 2, 4, 8, 16)  # F1 from 1 purchase a year ... F5 from 16
    monetary_minor: tuple[int, ...] = (1, 5_000, 20_000, 50_000, 100_000)  # M1 ... M5, per year
    health_full_recency_days: int = 7
    health_zero_recency_days: int = 180
    health_full_visits_90d: int = 6
    health_full_spend_90d_minor: int = 30_000
    new_member_days: int = 30
    active_days: int = 60
    at_risk_days: int = 180
    seen_keeps_at_risk_days: int = 90
    fallback_push_hour: int = 19  # local hour to reach a member when nobody's habits are known yet


class LifecycleStage(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    LAPSED = "lapsed"


class HealthComponent(msgspec.Struct, frozen=True):
    name: str
    score: int  # 0..100
    weight_percent: int
    explanation: str


class RfmScores(msgspec.Struct, frozen=True):
    recency: int  # 0 (never bought) .. 5
    frequency: int
    monetary: int


class WindowCounts(msgspec.Struct, frozen=True):
    days: int
    visits: int
    purchases: int
    spend_minor: int  # net of refunds in the window


class MemberTraits(msgspec.Struct, frozen=True):
    as_of: datetime
    joined_at: datetime | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    last_purchase_at: datetime | None
    days_since_last_purchase: int | None
    windows: list[WindowCounts]
    average_basket_minor: int | None  # over the last 365 days
    lifetime_purchases: int
    lifetime_spend_minor: int
    lifetime_refunded_minor: int
    favourite_store_id: uuid.UUID | None
    categories: list[tuple[str, int]]  # most bought first
    push_open_hours_utc: list[int]  # 168 counts, index 0 = Monday 00:00 UTC
    app_open_hours_utc: list[int]
    check_in_hours_utc: list[int]
    preferred_push_hour_local: int | None  # hour of day (0-23), member's zone, with most push opens
    best_push_hour: BestHour  # from all engagement, blended with everyone's when the member's is thin
    rfm: RfmScores
    health_score: int  # 0..100
    health_components: list[HealthComponent]
    lifecycle_stage: LifecycleStage

    def engagement_hours(self) -> list[int]:
        return engagement(self.app_open_hours_utc, self.push_open_hours_utc, self.check_in_hours_utc)


def compute_traits(
    counters: TraitCounters,
    activity: Iterable[DailyActivity],
    now: datetime,
    time_zone: str,
    population_hours: list[int],
    policy: TraitPolicy = TraitPolicy(),  # noqa: B008 - immutable
) -> MemberTraits:
    rows = list(activity)
    now = now.astimezone(UTC)
    today = now.date()
    windows = [_window(rows, today, days) for days in WINDOWS_DAYS]
    by_days = {window.days: window for window in windows}
    year = [row for row in rows if row.day > today - timedelta(days=365)]
    year_purchases = sum(row.purchases for row in year)
    days_since_purchase = _days_since(counters.last_purchase_at, now)
    rfm = RfmScores(
        recency=_descending_score(days_since_purchase, policy.recency_days),
        frequency=_ascending_score(by_days[365].purchases, policy.frequency_purchases),
        monetary=_ascending_score(by_days[365].spend_minor, policy.monetary_minor),
    )
    components = _health_components(counters, rows, by_days[90], now, policy)
    return MemberTraits(
        as_of=now,
        joined_at=counters.joined_at,
        first_seen_at=counters.first_seen_at,
        last_seen_at=counters.last_seen_at,
        last_purchase_at=counters.last_purchase_at,
        days_since_last_purchase=days_since_purchase,
        windows=windows,
        average_basket_minor=sum(r.spend_minor for r in year) // year_purchases if year_purchases else None,
        lifetime_purchases=counters.lifetime_purchases,
        lifetime_spend_minor=counters.lifetime_spend_minor,
        lifetime_refunded_minor=counters.lifetime_refunded_minor,
        favourite_store_id=_favourite_store(year),
        categories=sorted(counters.categories.items(), key=lambda item: (-item[1], item[0])),
        push_open_hours_utc=list(counters.push_open_hours),
        app_open_hours_utc=list(counters.app_open_hours),
        check_in_hours_utc=list(counters.check_in_hours),
        preferred_push_hour_local=_most_opened_local_hour(counters.push_open_hours, now, time_zone),
        best_push_hour=best_hour(
            counters.engagement_hours(), population_hours, now, time_zone, policy.fallback_push_hour
        ),
        rfm=rfm,
        health_score=(sum(c.score * c.weight_percent for c in components) + 50) // 100,
        health_components=components,
        lifecycle_stage=_lifecycle(counters, now, policy),
    )


def _window(rows: list[DailyActivity], today: date, days: int) -> WindowCounts:
    inside = [row for row in rows if row.day > today - timedelta(days=days)]
    return WindowCounts(
        days=days,
        visits=len({row.day for row in inside if row.purchases or row.check_ins}),
        purchases=sum(row.purchases for row in inside),
        spend_minor=sum(row.spend_minor - row.refunded_minor for row in inside),
    )


def _days_since(moment: datetime | None, now: datetime) -> int | None:
    return None if moment is None else max(0, (now - moment).days)


def _ascending_score(value: int, thresholds: tuple[int, ...]) -> int:
    """How many thresholds `value` reaches: 0 below the first, len(thresholds) at or above the last."""
    return sum(value >= threshold for threshold in thresholds)


def _descending_score(days: int | None, thresholds: tuple[int, ...]) -> int:
    """len(thresholds)+1 within the first threshold, one less per threshold passed; 0 when never."""
    if days is None:
        return 0
    return len(thresholds) + 1 - sum(days > threshold for threshold in thresholds)


def _favourite_store(year: list[DailyActivity]) -> uuid.UUID | None:
    """The store visited on most days in the last year; ties go to the most recently visited."""
    visit_days: dict[uuid.UUID, set[date]] = {}
    for row in year:
        if row.store_id is not None and (row.purchases or row.check_ins):
            visit_days.setdefault(row.store_id, set()).add(row.day)
    if not visit_days:
        return None
    return max(visit_days, key=lambda store: (len(visit_days[store]), max(visit_days[store]), str(store)))


def _health_components(
    counters: TraitCounters,
    rows: list[DailyActivity],
    quarter: WindowCounts,
    now: datetime,
    policy: TraitPolicy,
) -> list[HealthComponent]:
    since_visit = _days_since(counters.last_visit_at, now)
    if since_visit is None:
        recency, recency_text = 0, "no purchase or store visit yet"
    else:
        full, zero = policy.health_full_recency_days, policy.health_zero_recency_days
        recency = 100 if since_visit <= full else max(0, 100 * (zero - since_visit) // (zero - full))
        recency_text = f"last purchase or store visit {since_visit} days ago"
    frequency = min(100, 100 * quarter.visits // policy.health_full_visits_90d)
    monetary = min(100, 100 * max(0, quarter.spend_minor) // policy.health_full_spend_90d_minor)
    today = now.date()
    recent = sum(r.interactions for r in rows if r.day > today - timedelta(days=30))
    before = sum(
        r.interactions for r in rows if today - timedelta(days=90) < r.day <= today - timedelta(days=30)
    )
    # Recent 30 days against the average 30 days of the two months before: steady = 50, doubled = 100.
    trend = (100 if recent else 0) if before == 0 else min(100, 100 * recent // before)
    return [
        HealthComponent("recency", recency, 35, recency_text),
        HealthComponent(
            "frequency",
            frequency,
            25,
            f"{quarter.visits} visit days in the last 90 days ({policy.health_full_visits_90d} = full score)",
        ),
        HealthComponent(
            "monetary",
            monetary,
            20,
            f"{quarter.spend_minor} spent (minor units, net) in the last 90 days "
            f"({policy.health_full_spend_90d_minor} = full score)",
        ),
        HealthComponent(
            "engagement_trend",
            trend,
            20,
            f"{recent} interactions in the last 30 days against {before} in the 60 days before",
        ),
    ]


def _lifecycle(counters: TraitCounters, now: datetime, policy: TraitPolicy) -> LifecycleStage:
    joined = counters.joined_at or counters.first_seen_at
    if joined is not None and now - joined <= timedelta(days=policy.new_member_days):
        return LifecycleStage.NEW
    since_visit = _days_since(counters.last_visit_at, now)
    if since_visit is not None and since_visit <= policy.active_days:
        return LifecycleStage.ACTIVE
    if since_visit is not None and since_visit <= policy.at_risk_days:
        return LifecycleStage.AT_RISK
    since_seen = _days_since(counters.last_seen_at, now)
    if since_visit is None and since_seen is not None and since_seen <= policy.seen_keeps_at_risk_days:
        return LifecycleStage.AT_RISK
    return LifecycleStage.LAPSED


def _most_opened_local_hour(histogram: list[int], now: datetime, time_zone: str) -> int | None:
    if not any(histogram):
        return None
    by_local_hour = local_hours(histogram, now, time_zone)
    return max(range(24), key=lambda hour: (by_local_hour[hour], -hour))
