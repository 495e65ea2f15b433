"""Store finder, check-ins and their fraud review."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from accounts.errors import MemberNotFound
from accounts.tables import Member
from domain.interactions import Channel, InteractionKind
from geofence.catalog import CatalogStore, StoreCatalog
from geofence.errors import CheckInRejected, CheckInStoreNotFound, TooManyCheckInAttempts
from geofence.geometry import CircleFence, PolygonFence
from geofence.rules import (
    CheckInPolicy,
    FixIn,
    PreviousCheckIn,
    StoreState,
    Trigger,
    judge_check_in,
    local_day,
    reward_for,
)
from geofence.schemas import (
    CheckInRequest,
    CheckInResult,
    FraudReview,
    NearbyStore,
    NearbyStores,
    Region,
    RegionSet,
    SuspiciousMember,
    TravelPair,
)
from geofence.tables import CheckIn, CheckInAttempt, CheckInFlag
from infra.db import UnitOfWork
from infra.rate_limit import within_limit
from infra.redis import RedisKeys
from points import ledger
from points.miles import add_miles
from points.program import Program
from points.tables import EntryKind
from stores.rules import is_open_at
from stores.tables import Store
from timeline.recording import record
from timeline.rules import EventDraft

MIN_REFRESH_M = 500


async def nearby_stores(
    uow: UnitOfWork,
    catalog: StoreCatalog,
    latitude: float,
    longitude: float,
    limit: int,
    radius_m: float | None,
    now: datetime,
) -> NearbyStores:
    index, stores = await catalog.current(uow)
    neighbours = index.nearest(latitude, longitude, limit, radius_m)
    return NearbyStores(items=[_nearby(stores[n.store_id], n.distance_m, now) for n in neighbours])


def _nearby(store: CatalogStore, distance_m: float, now: datetime) -> NearbyStore:
    return NearbyStore(
        store_id=store.store_id,
        code=store.code,
        name=store.name,
        address=store.address,
        latitude=store.latitude,
        longitude=store.longitude,
        distance_m=round(distance_m),
        open_now=store.open_at(now),
        check_in_radius_m=store.check_in_radius_m,
    )


async def region_set(
    uow: UnitOfWork, catalog: StoreCatalog, latitude: float, longitude: float, count: int
) -> RegionSet:
    """The `count` nearest stores as OS geofences (iOS monitors at most 20 regions per app).

    Ask again after moving half the distance to the farthest of them: by then a store not in the set
    may have become one of the nearest.
    """
    index, stores = await catalog.current(uow)
    neighbours = index.nearest(latitude, longitude, count)
    farthest = neighbours[-1].distance_m if neighbours else 0.0
    return RegionSet(
        regions=[
            Region(
                store_id=n.store_id,
                latitude=stores[n.store_id].latitude,
                longitude=stores[n.store_id].longitude,
                radius_m=stores[n.store_id].check_in_radius_m,
            )
            for n in neighbours
        ],
        refresh_after_moving_m=max(MIN_REFRESH_M, round(farthest / 2)),
    )


def _fence(store: Store) -> CircleFence | PolygonFence:
    if store.fence_polygon:
        return PolygonFence(vertices=tuple((lat, lon) for lat, lon in store.fence_polygon))
    return CircleFence(center=(store.latitude, store.longitude), radius_m=store.check_in_radius_m)


async def check_in(
    uow: UnitOfWork,
    redis: RedisKeys,
    policy: CheckInPolicy,
    program: Program,
    member_id: uuid.UUID,
    request: CheckInRequest,
    now: datetime,
) -> CheckInResult:
    """Judge a check-in; an accepted one earns through the points ledger, once per store and local day.

    A rejected one is recorded with its reason and evidence (and on the timeline) before the error is
    raised: the rejection is kept for fraud review although the request fails.
    """
    store = (
        await uow.session.execute(
            select(Store).where(Store.id == request.store_id, Store.archived_at.is_(None))
        )
    ).scalar_one_or_none()
    if store is None:
        raise CheckInStoreNotFound()
    fix = FixIn(
        point=(request.latitude, request.longitude),
        accuracy_m=request.accuracy_m,
        fix_at=request.fix_at,
        mock_location=request.integrity.mock_location,
    )
    day = local_day(request.fix_at, store.time_zone)
    attempt = _attempt(member_id, request, now)
    previous: PreviousCheckIn | None = None
    try:
        if not await within_limit(
            redis, f"check-in:{member_id}", policy.attempts_per_hour, 3600, fail_open=True
        ):
            raise TooManyCheckInAttempts(retry_after_s=3600)
        existing = await _existing(uow, member_id, store.id, day)
        if existing is not None:
            return await _duplicate(uow, attempt, existing)
        previous = await _previous(uow, member_id, request.fix_at)
        state = StoreState(
            fence=_fence(store),
            geofence_enabled=store.geofence_enabled,
            open_now=is_open_at(store.status, store.opening_hours, store.time_zone, now),
        )
        verdict = judge_check_in(policy, state, fix, previous, now)
    except CheckInRejected as rejection:
        await _record_rejection(uow, attempt, rejection, previous, store.id, now)
        raise
    return await _accept(uow, policy, program, store, attempt, day, verdict.distance_m, now)


def _attempt(member_id: uuid.UUID, request: CheckInRequest, now: datetime) -> CheckInAttempt:
    return CheckInAttempt(
        member_id=member_id,
        store_id=request.store_id,
        attempted_at=now,
        fix_at=request.fix_at,
        latitude=request.latitude,
        longitude=request.longitude,
        accuracy_m=request.accuracy_m,
        trigger=request.trigger,
        mock_location=request.integrity.mock_location,
        outcome="accepted",
    )


async def _existing(uow: UnitOfWork, member_id: uuid.UUID, store_id: uuid.UUID, day: date) -> CheckIn | None:
    return (
        await uow.session.execute(
            select(CheckIn).where(
                CheckIn.member_id == member_id, CheckIn.store_id == store_id, CheckIn.local_day == day
            )
        )
    ).scalar_one_or_none()


async def _previous(uow: UnitOfWork, member_id: uuid.UUID, before: datetime) -> PreviousCheckIn | None:
    row = (
        await uow.session.execute(
            select(CheckIn.latitude, CheckIn.longitude, CheckIn.fix_at)
            .where(CheckIn.member_id == member_id, CheckIn.fix_at <= before)
            .order_by(CheckIn.fix_at.desc())
            .limit(1)
        )
    ).one_or_none()
    return None if row is None else PreviousCheckIn(point=(row[0], row[1]), fix_at=row[2])


def _result(check_in: CheckIn, duplicate: bool) -> CheckInResult:
    return CheckInResult(
        check_in_id=check_in.id,
        store_id=check_in.store_id,
        local_day=check_in.local_day,
        checked_in_at=check_in.fix_at,
        duplicate=duplicate,
        points_awarded=check_in.points,
        miles_awarded=check_in.miles,
        reward_withheld=check_in.reward_withheld,
    )


async def _duplicate(uow: UnitOfWork, attempt: CheckInAttempt, existing: CheckIn) -> CheckInResult:
    attempt.outcome = "duplicate"
    uow.session.add(attempt)
    return _result(existing, duplicate=True)


async def _record_rejection(
    uow: UnitOfWork,
    attempt: CheckInAttempt,
    rejection: CheckInRejected,
    previous: PreviousCheckIn | None,
    store_id: uuid.UUID,
    now: datetime,
) -> None:
    evidence: dict[str, object] = {key: value for key, value in rejection.extensions.items()}
    if previous is not None:
        evidence["previous"] = {
            "latitude": previous.point[0],
            "longitude": previous.point[1],
            "fix_at": previous.fix_at.isoformat(),
        }
    attempt.outcome, attempt.reason, attempt.evidence = "rejected", rejection.code, evidence
    uow.session.add(attempt)
    await record(
        uow,
        EventDraft(
            member_id=attempt.member_id,
            kind=InteractionKind.CHECK_IN_REJECTED,
            occurred_at=attempt.fix_at,
            channel=_channel(attempt.trigger),
            store_id=store_id,
            properties={"reason": rejection.code},
        ),
        now,
    )


def _channel(trigger: Trigger) -> Channel:
    return Channel.APP if trigger is Trigger.USER_TAP else Channel.GEOFENCE


async def _accept(
    uow: UnitOfWork,
    policy: CheckInPolicy,
    program: Program,
    store: Store,
    attempt: CheckInAttempt,
    day: date,
    distance_m: float,
    now: datetime,
) -> CheckInResult:
    member_id = attempt.member_id
    account = await ledger.lock_account(
        uow, member_id, now
    )  # one check-in of a member at a time: the cap holds
    check_in = CheckIn(
        member_id=member_id,
        store_id=store.id,
        local_day=day,
        fix_at=attempt.fix_at,
        recorded_at=now,
        trigger=attempt.trigger,
        latitude=attempt.latitude,
        longitude=attempt.longitude,
        accuracy_m=attempt.accuracy_m,
        distance_m=distance_m,
        points=0,
        miles=0,
    )
    try:
        async with uow.session.begin_nested():
            uow.session.add(check_in)
    except IntegrityError:
        # The same check-in arrived concurrently and won; answer with it, like a sequential repeat.
        existing = await _existing(uow, member_id, store.id, day)
        assert existing is not None
        return await _duplicate(uow, attempt, existing)
    rewarded_today = (
        await uow.session.execute(
            select(func.count()).where(
                CheckIn.member_id == member_id,
                CheckIn.local_day == day,
                CheckIn.reward_withheld.is_(None),
                CheckIn.id != check_in.id,
            )
        )
    ).scalar_one()
    flagged = await uow.session.get(CheckInFlag, member_id) is not None
    reward = reward_for(policy, store.id, attempt.fix_at, rewarded_today, flagged)
    check_in.points, check_in.miles, check_in.reward_withheld = reward.points, reward.miles, reward.withheld
    if reward.points:
        await ledger.earn(
            uow,
            account,
            reward.points,
            kind=EntryKind.EARN,
            reason=f"Check-in at {store.name}",
            earned_at=attempt.fix_at,
            available_at=attempt.fix_at,
            expires_at=program.expires_at(attempt.fix_at),
            now=now,
            miles=reward.miles,
        )
    uow.session.add(attempt)
    await record(
        uow,
        EventDraft(
            member_id=member_id,
            kind=InteractionKind.CHECKED_IN,
            occurred_at=attempt.fix_at,
            channel=_channel(attempt.trigger),
            store_id=store.id,
            properties={
                "trigger": attempt.trigger.value,
                "distance_m": round(distance_m),
                "points": reward.points,
                "miles": reward.miles,
                **({"withheld": reward.withheld} if reward.withheld else {}),
            },
        ),
        now,
    )
    await add_miles(uow, program, account, reward.miles, attempt.fix_at, now)
    return _result(check_in, duplicate=False)


async def fraud_review(uow: UnitOfWork, since: datetime, limit: int) -> FraudReview:
    rows = (
        await uow.session.execute(
            select(CheckInAttempt)
            .where(CheckInAttempt.outcome == "rejected", CheckInAttempt.attempted_at >= since)
            .order_by(CheckInAttempt.attempted_at)
        )
    ).scalars()
    counts: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    travel: dict[uuid.UUID, list[TravelPair]] = defaultdict(list)
    for attempt in rows:
        counts[attempt.member_id][attempt.reason or "unknown"] += 1
        previous = attempt.evidence.get("previous")
        if attempt.reason == "impossible_travel" and isinstance(previous, dict):
            travel[attempt.member_id].append(
                TravelPair(
                    from_latitude=previous["latitude"],
                    from_longitude=previous["longitude"],
                    from_at=datetime.fromisoformat(previous["fix_at"]),
                    to_latitude=attempt.latitude,
                    to_longitude=attempt.longitude,
                    to_at=attempt.fix_at,
                    speed_kmh=int(attempt.evidence.get("speed_kmh", 0)),
                )
            )
    flagged = set(
        (
            await uow.session.execute(select(CheckInFlag.member_id).where(CheckInFlag.member_id.in_(counts)))
        ).scalars()
    )
    members = sorted(
        (
            SuspiciousMember(
                member_id=m,
                rejections=dict(c),
                total_rejections=sum(c.values()),
                impossible_travel=travel[m],
                flagged=m in flagged,
            )
            for m, c in counts.items()
        ),
        key=lambda s: (-s.total_rejections, str(s.member_id)),
    )
    return FraudReview(since=since, members=members[:limit])


async def flag_member(
    uow: UnitOfWork, member_id: uuid.UUID, staff_id: uuid.UUID, reason: str, now: datetime
) -> None:
    """Stop the member earning from check-ins (their visits are still recorded)."""
    if await uow.session.get(Member, member_id) is None:
        raise MemberNotFound()
    existing = await uow.session.get(CheckInFlag, member_id)
    if existing is None:
        uow.session.add(CheckInFlag(member_id=member_id, flagged_at=now, flagged_by=staff_id, reason=reason))
    else:
        existing.reason, existing.flagged_by, existing.flagged_at = reason, staff_id, now


async def unflag_member(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    existing = await uow.session.get(CheckInFlag, member_id)
    if existing is not None:
        await uow.session.delete(existing)
