"""Checking in at a store: judged, then accepted once per store and local day, or rejected and recorded.

A member's check-ins run one at a time (a transaction-scoped lock per member), so the travel check
sees every check-in accepted before it, and the daily reward cap and the rejection cap hold under
concurrent requests.

A check-in is on the app's hot path, so each step is one statement: the store read with the member's
lock, everything known about the member read in one query after it (its snapshot then includes every
check-in committed before the lock was ours), and the check-in written with its attempt row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.geo import CircleFence, PolygonFence
from domain.ids import new_id
from domain.interactions import Channel, InteractionKind
from geofence.errors import CheckInRejected, CheckInStoreNotFound
from geofence.rules import (
    CheckInPolicy,
    FixIn,
    KnownCheckIn,
    Reward,
    StoreState,
    Trigger,
    judge_check_in,
    local_day,
    reward_for,
)
from geofence.schemas import CheckInRequest, CheckInResult
from geofence.tables import CheckIn, CheckInAttempt, CheckInFlag
from infra.db import UnitOfWork
from infra.locks import lock_key, lock_until_commit
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
_ATTEMPTS = CheckInAttempt.__table__.c


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

    def columns(self, now: datetime, **judgement: Any) -> dict[str, Any]:
        """The attempt's `check_in_attempts` row, with what its judgement adds (outcome, reason …)."""
        return {
            "id": new_id(),
            "member_id": self.member_id,
            "store_id": self.store_id,
            "attempted_at": now,
            "fix_at": self.fix_at,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "accuracy_m": self.accuracy_m,
            "trigger": self.trigger,
            "mock_location": self.mock_location,
            **judgement,
        }


@dataclass(frozen=True)
class DayCheckIn:
    """The member's check-in at a store on a local day, as the app is told about it."""

    id: uuid.UUID
    store_id: uuid.UUID
    local_day: date
    fix_at: datetime
    points: int
    miles: int
    reward_withheld: str | None

    def result(self, duplicate: bool) -> CheckInResult:
        return CheckInResult(
            check_in_id=self.id,
            store_id=self.store_id,
            local_day=self.local_day,
            checked_in_at=self.fix_at,
            duplicate=duplicate,
            points_awarded=self.points,
            miles_awarded=self.miles,
            reward_withheld=self.reward_withheld,
        )


@dataclass(frozen=True)
class MemberFacts:
    """What the judgement and the reward of a check-in need to know about its member."""

    neighbours: list[KnownCheckIn]
    existing: DayCheckIn | None  # the member's check-in at the store on the day, if there is one
    rewarded_today: int
    flagged: bool
    rejections_kept: int


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
    store = await _store_under_member_lock(uow, member_id, request.store_id)
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
    day = local_day(attempt.fix_at, store.time_zone)
    facts = await _member_facts(uow, attempt, day, now)
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
        verdict = judge_check_in(policy, state, fix, facts.neighbours, now)
    except CheckInRejected as rejection:
        if facts.rejections_kept < policy.recorded_rejections_per_day:
            uow.keep_on_failure(
                partial(_record_rejection, policy=policy, attempt=attempt, rejection=rejection, now=now)
            )
        raise
    if facts.existing is not None:
        await uow.session.execute(insert(CheckInAttempt).values(attempt.columns(now, outcome="duplicate")))
        return facts.existing.result(duplicate=True)
    reward = reward_for(policy, store.id, attempt.fix_at, facts.rewarded_today, facts.flagged)
    return await _accept(uow, program, store, attempt, day, verdict.distance_m, reward, now)


async def _store_under_member_lock(uow: UnitOfWork, member_id: uuid.UUID, store_id: uuid.UUID) -> Store:
    """The active store, read by the statement that takes the member's check-in lock (no round trip of
    its own). What is read after it sees every check-in of the member committed before."""
    lock = func.pg_advisory_xact_lock(*lock_key(_MEMBER_LOCK, member_id))
    row = (
        await uow.session.execute(
            select(Store, lock).where(Store.id == store_id, Store.archived_at.is_(None))
        )
    ).first()
    if row is None:
        raise CheckInStoreNotFound()
    store: Store = row[0]
    return store


def _fence(store: Store) -> CircleFence | PolygonFence:
    if store.fence_polygon:
        return PolygonFence(vertices=tuple((lat, lon) for lat, lon in store.fence_polygon))
    return CircleFence(center=(store.latitude, store.longitude), radius_m=store.check_in_radius_m)


async def _member_facts(uow: UnitOfWork, attempt: Attempt, day: date, now: datetime) -> MemberFacts:
    rows = (await uow.session.execute(_member_facts_query(attempt, day, now))).all()
    first = rows[0]  # the counts come on every row, one row per neighbour (at least one row)
    existing = None
    if first.check_in_id is not None:
        existing = DayCheckIn(
            id=first.check_in_id,
            store_id=attempt.store_id,
            local_day=day,
            fix_at=first.check_in_fix_at,
            points=first.points,
            miles=first.miles,
            reward_withheld=first.reward_withheld,
        )
    return MemberFacts(
        neighbours=[
            KnownCheckIn(point=(row.latitude, row.longitude), fix_at=row.fix_at, accuracy_m=row.accuracy_m)
            for row in rows
            if row.fix_at is not None
        ],
        existing=existing,
        rewarded_today=first.rewarded_today,
        flagged=first.flagged,
        rejections_kept=first.rejections_kept,
    )


def _member_facts_query(attempt: Attempt, day: date, now: datetime) -> Select[Any]:
    """In one query: the member's honest positions just before (or at) and just after the fix (every
    attempt judged honest counts, a repeat at a store already visited too, since it also places the
    member there), the day's check-in at the store, the check-ins rewarded that day, the review flag,
    and the rejections kept lately."""
    member_id = attempt.member_id
    positions = select(
        CheckInAttempt.latitude, CheckInAttempt.longitude, CheckInAttempt.fix_at, CheckInAttempt.accuracy_m
    ).where(CheckInAttempt.member_id == member_id, CheckInAttempt.outcome.in_(HONEST_OUTCOMES))
    before = positions.where(CheckInAttempt.fix_at <= attempt.fix_at).order_by(CheckInAttempt.fix_at.desc())
    after = positions.where(CheckInAttempt.fix_at > attempt.fix_at).order_by(CheckInAttempt.fix_at)
    neighbours = union_all(before.limit(1), after.limit(1)).subquery("neighbour")
    counts = select(
        select(func.count())
        .where(CheckIn.member_id == member_id, CheckIn.local_day == day, CheckIn.reward_withheld.is_(None))
        .scalar_subquery()
        .label("rewarded_today"),
        exists().where(CheckInFlag.member_id == member_id).label("flagged"),
        _rejections_kept(member_id, now).label("rejections_kept"),
    ).subquery("counts")
    day_check_in = and_(
        CheckIn.member_id == member_id, CheckIn.store_id == attempt.store_id, CheckIn.local_day == day
    )
    return select(
        counts,
        neighbours,
        CheckIn.id.label("check_in_id"),
        CheckIn.fix_at.label("check_in_fix_at"),
        CheckIn.points,
        CheckIn.miles,
        CheckIn.reward_withheld,
    ).select_from(counts.outerjoin(neighbours, true()).outerjoin(CheckIn, day_check_in))


def _rejections_kept(member_id: uuid.UUID, now: datetime) -> ColumnElement[int]:
    """How many of the member's rejections are kept from the last 24 hours (counted up to 1,000)."""
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
    return select(func.count()).select_from(recent).scalar_subquery()


def _attempt_select(columns: dict[str, Any], *extra: ColumnElement[Any]) -> Select[Any]:
    """An attempt row's values as a SELECT, for INSERT … SELECT: typed as the columns they go into."""
    return select(*(literal(value, _ATTEMPTS[name].type) for name, value in columns.items()), *extra)


async def _record_rejection(
    uow: UnitOfWork, *, policy: CheckInPolicy, attempt: Attempt, rejection: CheckInRejected, now: datetime
) -> None:
    """Keep a rejection for fraud review: its attempt with the evidence, and a timeline event.

    The event is placed at the server's time, with the time the app claimed as a property: a client's
    clock (possibly years off) never decides where anything is stored.
    """
    await lock_until_commit(uow, _MEMBER_LOCK, attempt.member_id)
    columns = attempt.columns(
        now, outcome="rejected", reason=rejection.code, evidence=dict(rejection.extensions)
    )
    kept = await uow.session.execute(
        insert(CheckInAttempt)
        .from_select(
            list(columns),
            # A concurrent rejection may have reached the day's number since this one was judged.
            _attempt_select(columns).where(
                _rejections_kept(attempt.member_id, now) < policy.recorded_rejections_per_day
            ),
        )
        .returning(CheckInAttempt.id)
    )
    if kept.scalar_one_or_none() is None:
        return
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


def _channel(trigger: Trigger) -> Channel:
    return Channel.APP if trigger is Trigger.USER_TAP else Channel.GEOFENCE


def _write_check_in(check_in: DayCheckIn, attempt: Attempt, distance_m: float, now: datetime) -> Insert:
    """One statement writing the check-in and its attempt: `accepted`, or `duplicate` when the day's
    check-in exists after all (only if a check-in of the member bypassed the member lock)."""
    inserted = (
        pg_insert(CheckIn)
        .values(
            id=check_in.id,
            member_id=attempt.member_id,
            store_id=check_in.store_id,
            local_day=check_in.local_day,
            fix_at=check_in.fix_at,
            recorded_at=now,
            trigger=attempt.trigger,
            latitude=attempt.latitude,
            longitude=attempt.longitude,
            accuracy_m=attempt.accuracy_m,
            distance_m=distance_m,
            points=check_in.points,
            miles=check_in.miles,
            reward_withheld=check_in.reward_withheld,
        )
        .on_conflict_do_nothing(constraint="uq_check_ins_member_store_day")
        .returning(CheckIn.id)
        .cte("inserted")
    )
    columns = attempt.columns(now)
    outcome = case((exists(inserted.select()), "accepted"), else_="duplicate")
    return (
        insert(CheckInAttempt)
        .add_cte(inserted)
        .from_select([*columns, "outcome"], _attempt_select(columns, outcome))
        .returning(CheckInAttempt.outcome)
    )


async def _accept(
    uow: UnitOfWork,
    program: Program,
    store: Store,
    attempt: Attempt,
    day: date,
    distance_m: float,
    reward: Reward,
    now: datetime,
) -> CheckInResult:
    member_id = attempt.member_id
    account = await ledger.lock_account(uow, member_id, now)
    check_in = DayCheckIn(
        id=new_id(),
        store_id=store.id,
        local_day=day,
        fix_at=attempt.fix_at,
        points=reward.points,
        miles=reward.miles,
        reward_withheld=reward.withheld,
    )
    outcome = (await uow.session.execute(_write_check_in(check_in, attempt, distance_m, now))).scalar_one()
    if outcome == "duplicate":
        existing = (await _member_facts(uow, attempt, day, now)).existing
        assert existing is not None
        return existing.result(duplicate=True)
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
    return check_in.result(duplicate=False)
