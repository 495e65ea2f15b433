"""Checking in at a store: judged, then accepted once per store and local day, or rejected and recorded.

A member's check-ins run one at a time (a transaction-scoped lock per member), so the travel check
sees every check-in accepted before it, and the daily reward cap and the rejection cap hold under
concurrent requests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from domain.geo import CircleFence, PolygonFence
from domain.interactions import Channel, InteractionKind
from geofence.errors import CheckInRejected, CheckInStoreNotFound
from geofence.rules import (
    CheckInPolicy,
    FixIn,
    KnownCheckIn,
    StoreState,
    Trigger,
    judge_check_in,
    local_day,
    reward_for,
)
from geofence.schemas import CheckInRequest, CheckInResult
from geofence.tables import CheckIn, CheckInAttempt, CheckInFlag
from infra.db import UnitOfWork
from infra.locks import lock_until_commit
from points import ledger
from points.miles import change_miles
from points.program import Program
from points.tables import EntryKind
from stores.rules import is_open_at
from stores.tables import Store
from timeline.recording import record
from timeline.rules import EventDraft

_MEMBER_LOCK = "geofence.check-in"
HONEST_OUTCOMES = ("accepted", "duplicate")
REJECTION_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Attempt:
    """What the app sent, as plain values (they outlive the rolled-back transaction of a rejection)."""

    member_id: uuid.UUID
    store_id: uuid.UUID
    fix_at: datetime
    latitude: float
    longitude: float
    accuracy_m: float
    trigger: Trigger
    mock_location: bool

    def row(self, now: datetime, outcome: str) -> CheckInAttempt:
        return CheckInAttempt(
            member_id=self.member_id,
            store_id=self.store_id,
            attempted_at=now,
            fix_at=self.fix_at,
            latitude=self.latitude,
            longitude=self.longitude,
            accuracy_m=self.accuracy_m,
            trigger=self.trigger,
            mock_location=self.mock_location,
            outcome=outcome,
        )


async def check_in(
    uow: UnitOfWork,
    policy: CheckInPolicy,
    program: Program,
    member_id: uuid.UUID,
    request: CheckInRequest,
    now: datetime,
) -> CheckInResult:
    """Judge a check-in, then answer with the day's check-in at the store (made now if it is the first).

    Every check-in is judged, repeats too: a mocked location at a store already visited today is a
    rejection like any other. A rejection is kept for fraud review (up to the daily number) although
    the request fails and everything else it did is rolled back.
    """
    store = await _active_store(uow, request.store_id)
    attempt = Attempt(
        member_id=member_id,
        store_id=store.id,
        fix_at=request.fix_at,
        latitude=request.latitude,
        longitude=request.longitude,
        accuracy_m=request.accuracy_m,
        trigger=request.trigger,
        mock_location=request.integrity.mock_location,
    )
    await lock_until_commit(uow, _MEMBER_LOCK, member_id)
    fix = FixIn(
        point=(attempt.latitude, attempt.longitude),
        accuracy_m=attempt.accuracy_m,
        fix_at=attempt.fix_at,
        mock_location=attempt.mock_location,
    )
    state = StoreState(
        fence=_fence(store),
        geofence_enabled=store.geofence_enabled,
        open_now=is_open_at(store.status, store.opening_hours, store.time_zone, now),
    )
    try:
        verdict = judge_check_in(policy, state, fix, await _neighbours(uow, member_id, attempt.fix_at), now)
    except CheckInRejected as rejection:
        if await _rejections_kept(uow, member_id, now) < policy.recorded_rejections_per_day:
            uow.keep_on_failure(
                partial(_record_rejection, policy=policy, attempt=attempt, rejection=rejection, now=now)
            )
        raise
    day = local_day(attempt.fix_at, store.time_zone)
    existing = await _existing(uow, member_id, store.id, day)
    if existing is not None:
        return _duplicate(uow, attempt, existing, now)
    return await _accept(uow, policy, program, store, attempt, day, verdict.distance_m, now)


async def _active_store(uow: UnitOfWork, store_id: uuid.UUID) -> Store:
    store = (
        await uow.session.execute(select(Store).where(Store.id == store_id, Store.archived_at.is_(None)))
    ).scalar_one_or_none()
    if store is None:
        raise CheckInStoreNotFound()
    return store


def _fence(store: Store) -> CircleFence | PolygonFence:
    if store.fence_polygon:
        return PolygonFence(vertices=tuple((lat, lon) for lat, lon in store.fence_polygon))
    return CircleFence(center=(store.latitude, store.longitude), radius_m=store.check_in_radius_m)


async def _neighbours(uow: UnitOfWork, member_id: uuid.UUID, fix_at: datetime) -> list[KnownCheckIn]:
    """The member's honest positions just before (or at) and just after `fix_at`: every attempt judged
    honest counts, a repeat at a store already visited too, since it also places the member there."""
    honest = CheckInAttempt.outcome.in_(HONEST_OUTCOMES)
    columns = select(
        CheckInAttempt.latitude, CheckInAttempt.longitude, CheckInAttempt.fix_at, CheckInAttempt.accuracy_m
    ).where(CheckInAttempt.member_id == member_id, honest)
    before = columns.where(CheckInAttempt.fix_at <= fix_at).order_by(CheckInAttempt.fix_at.desc()).limit(1)
    after = columns.where(CheckInAttempt.fix_at > fix_at).order_by(CheckInAttempt.fix_at).limit(1)
    rows = [*(await uow.session.execute(before)), *(await uow.session.execute(after))]
    return [KnownCheckIn(point=(row[0], row[1]), fix_at=row[2], accuracy_m=row[3]) for row in rows]


async def _rejections_kept(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> int:
    recent = (
        select(CheckInAttempt.id)
        .where(
            CheckInAttempt.member_id == member_id,
            CheckInAttempt.attempted_at > now - REJECTION_WINDOW,
            CheckInAttempt.outcome == "rejected",
        )
        .limit(1_000)
        .subquery()
    )
    return int((await uow.session.execute(select(func.count()).select_from(recent))).scalar_one())


async def _record_rejection(
    uow: UnitOfWork, *, policy: CheckInPolicy, attempt: Attempt, rejection: CheckInRejected, now: datetime
) -> None:
    """Keep a rejection for fraud review: its attempt with the evidence, and a timeline event.

    The event is placed at the server's time, with the time the app claimed as a property: a client's
    clock (possibly years off) never decides where anything is stored.
    """
    await lock_until_commit(uow, _MEMBER_LOCK, attempt.member_id)
    if await _rejections_kept(uow, attempt.member_id, now) >= policy.recorded_rejections_per_day:
        return  # a concurrent rejection reached the day's number first
    row = attempt.row(now, "rejected")
    row.reason, row.evidence = rejection.code, dict(rejection.extensions)
    uow.session.add(row)
    await record(
        uow,
        EventDraft(
            member_id=attempt.member_id,
            kind=InteractionKind.CHECK_IN_REJECTED,
            occurred_at=now,
            channel=_channel(attempt.trigger),
            store_id=attempt.store_id,
            properties={"reason": rejection.code, "claimed_fix_at": attempt.fix_at.isoformat()},
        ),
        now,
    )


async def _existing(uow: UnitOfWork, member_id: uuid.UUID, store_id: uuid.UUID, day: date) -> CheckIn | None:
    return (
        await uow.session.execute(
            select(CheckIn).where(
                CheckIn.member_id == member_id, CheckIn.store_id == store_id, CheckIn.local_day == day
            )
        )
    ).scalar_one_or_none()


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


def _duplicate(uow: UnitOfWork, attempt: Attempt, existing: CheckIn, now: datetime) -> CheckInResult:
    uow.session.add(attempt.row(now, "duplicate"))
    return _result(existing, duplicate=True)


def _channel(trigger: Trigger) -> Channel:
    return Channel.APP if trigger is Trigger.USER_TAP else Channel.GEOFENCE


async def _accept(
    uow: UnitOfWork,
    policy: CheckInPolicy,
    program: Program,
    store: Store,
    attempt: Attempt,
    day: date,
    distance_m: float,
    now: datetime,
) -> CheckInResult:
    member_id = attempt.member_id
    account = await ledger.lock_account(uow, member_id, now)
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
        # Only reachable if a check-in of this member bypassed the member lock; answer as a repeat.
        existing = await _existing(uow, member_id, store.id, day)
        assert existing is not None
        return _duplicate(uow, attempt, existing, now)
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
    uow.session.add(attempt.row(now, "accepted"))
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
    await change_miles(uow, program, account, reward.miles, attempt.fix_at, now)
    return _result(check_in, duplicate=False)
