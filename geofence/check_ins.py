"""Checking in at a store: judged, then accepted once per store and local day, or rejected and recorded.

A member's check-ins run one at a time (a transaction-scoped lock per member), so the travel check
sees every check-in accepted before it, and the daily reward cap and the rejection cap hold under
concurrent requests.

A check-in is on the app's hot path, so it takes three statements of its own (points.check_ins lends
its award's SQL to them): the store read with the member's lock and then the member's points account
locked; everything known about the member read after them (its snapshot then includes every check-in
and every change of the account committed before the locks were ours), with the miles period the award
adds to; and the check-in written with its attempt, its award and its timeline event.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import msgspec
from sqlalchemy import Row, text

from domain.geo import CircleFence, PolygonFence
from domain.ids import new_id
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
from infra.db import UnitOfWork
from infra.locks import lock_key, lock_until_commit
from points import check_ins as award
from points.changes import WRITING, Account, Changes, rows_sql
from points.ledger import account_of
from points.program import Program
from stores.rules import StoreStatus, is_open_at
from timeline.recording import recording, recording_sql
from timeline.rules import EventDraft

_MEMBER_LOCK = "geofence.check-in"
REJECTION_WINDOW = timedelta(hours=24)
KEPT_REJECTIONS_COUNTED_UP_TO = 1_000

# The store, read by the statement that takes the member's check-in lock, then (after it, in the order
# every check-in takes them) the member's points account. No row: no such active store.
_STORE_UNDER_MEMBER_LOCK = text(
    f"""
WITH member_lock AS (SELECT pg_advisory_xact_lock(:lock_namespace, :lock_key)),
account AS ({award.lock_account_sql("member_lock")})
SELECT store.id, store.name, store.latitude, store.longitude, store.check_in_radius_m, store.fence_polygon,
       store.time_zone, store.status, store.opening_hours, store.geofence_enabled, account.*
FROM stores AS store, account
WHERE store.id = :store_id AND store.archived_at IS NULL
"""  # noqa: S608 - constant SQL; values are bound
)

# How many of the member's rejections are kept from the last 24 hours (counted up to a limit).
_REJECTIONS_KEPT = f"""(
    SELECT count(*) FROM (
        SELECT FROM check_in_attempts
        WHERE member_id = :member_id AND attempted_at > :kept_since AND outcome = 'rejected'
        LIMIT {KEPT_REJECTIONS_COUNTED_UP_TO}
    ) AS kept
)"""  # noqa: S608 - constant SQL; values are bound

# The member's honest positions just before (or at) and just after the fix: every attempt judged honest
# counts, a repeat at a store already visited too, since it also places the member there. Then the
# day's check-in at the store, the check-ins rewarded that day, the review flag, the rejections kept
# lately, and the miles period of the award.
_HONEST_POSITIONS = """
    SELECT latitude, longitude, fix_at, accuracy_m FROM check_in_attempts
    WHERE member_id = :member_id AND outcome IN ('accepted', 'duplicate')"""
_MEMBER_FACTS = text(
    f"""
SELECT
    (SELECT coalesce(json_agg(neighbour), '[]') FROM (
        ({_HONEST_POSITIONS} AND fix_at <= :fix_at ORDER BY fix_at DESC LIMIT 1)
        UNION ALL
        ({_HONEST_POSITIONS} AND fix_at > :fix_at ORDER BY fix_at LIMIT 1)
    ) AS neighbour) AS neighbours,
    (SELECT row_to_json(day_check_in) FROM (
        SELECT id, store_id, local_day, fix_at, points, miles, reward_withheld FROM check_ins
        WHERE member_id = :member_id AND store_id = :store_id AND local_day = :local_day
    ) AS day_check_in) AS existing,
    (SELECT count(*) FROM check_ins
     WHERE member_id = :member_id AND local_day = :local_day AND reward_withheld IS NULL) AS rewarded_today,
    EXISTS (SELECT FROM check_in_flags WHERE member_id = :member_id) AS flagged,
    {_REJECTIONS_KEPT} AS rejections_kept,
    {award.PERIOD_SQL} AS period
"""  # noqa: S608 - constant SQL; values are bound
)

_WRITE_ATTEMPT = text(
    f"INSERT INTO check_in_attempts SELECT * FROM {rows_sql('check_in_attempts', 'attempt')}"  # noqa: S608 - constant SQL; values are bound
)

# The check-in's award and timeline event (points.changes), the check-in and its attempt. The unique key
# of a member's check-in at a store on a day cannot refuse it: check-ins are written under the member's
# lock, after reading the day's check-in. It stays the last guard of "once a day, rewarded once".
_WRITE_CHECK_IN = text(
    f"""
WITH {WRITING},
check_in AS (INSERT INTO check_ins SELECT * FROM {rows_sql("check_ins", "check_in")}),
attempt AS (INSERT INTO check_in_attempts SELECT * FROM {rows_sql("check_in_attempts", "attempt")})
SELECT 1
"""  # noqa: S608 - constant SQL; values are bound
)

# A rejection kept, with its timeline event, unless a concurrent rejection (judged meanwhile) reached
# the day's number: under the member's lock, taken by the statement before.
_KEEP_REJECTION = text(
    f"""
WITH kept AS (
    INSERT INTO check_in_attempts SELECT * FROM {rows_sql("check_in_attempts", "attempt")}
    WHERE {_REJECTIONS_KEPT} < :kept_at_most
    RETURNING id
),
{recording_sql("EXISTS (SELECT FROM kept)")}
SELECT 1
"""  # noqa: S608 - constant SQL; values are bound
)


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

    def row(self, now: datetime, outcome: str, **judgement: Any) -> dict[str, Any]:
        """The attempt's `check_in_attempts` row, with what its judgement adds (reason, evidence)."""
        return {
            "id": new_id(),
            **asdict(self),
            "attempted_at": now,
            "outcome": outcome,
            "reason": None,
            "evidence": {},
            **judgement,
        }


class DayCheckIn(msgspec.Struct, frozen=True):
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


class _Position(msgspec.Struct, frozen=True):
    latitude: float
    longitude: float
    fix_at: datetime
    accuracy_m: float


@dataclass(frozen=True)
class StoreVisited:
    """The store checked in at, as the judgement and the award see it."""

    id: uuid.UUID
    name: str
    time_zone: str
    state: StoreState


@dataclass(frozen=True)
class MemberFacts:
    """What the judgement and the reward of a check-in need to know about its member."""

    neighbours: list[KnownCheckIn]
    existing: DayCheckIn | None  # the member's check-in at the store on the day, if there is one
    rewarded_today: int
    flagged: bool
    rejections_kept: int
    period: object  # the miles period of the award, as points.check_ins read it


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
    store, account = await _store_under_member_lock(uow, member_id, request.store_id, now)
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
    facts = await _member_facts(uow, program, attempt, day, now)
    fix = FixIn(
        point=(attempt.latitude, attempt.longitude),
        accuracy_m=attempt.accuracy_m,
        fix_at=attempt.fix_at,
        mock_location=attempt.mock_location,
    )
    try:
        verdict = judge_check_in(policy, store.state, fix, facts.neighbours, now)
    except CheckInRejected as rejection:
        if facts.rejections_kept < policy.recorded_rejections_per_day:
            uow.keep_on_failure(
                partial(_keep_rejection, policy=policy, attempt=attempt, rejection=rejection, now=now)
            )
        raise
    if facts.existing is not None:
        await uow.session.execute(_WRITE_ATTEMPT, {"attempt": _rows(attempt.row(now, "duplicate"))})
        return facts.existing.result(duplicate=True)
    reward = reward_for(policy, store.id, attempt.fix_at, facts.rewarded_today, facts.flagged)
    check_in = DayCheckIn(
        id=new_id(),
        store_id=store.id,
        local_day=day,
        fix_at=attempt.fix_at,
        points=reward.points,
        miles=reward.miles,
        reward_withheld=reward.withheld,
    )
    await _accept(uow, program, store, account, facts.period, attempt, check_in, verdict.distance_m, now)
    return check_in.result(duplicate=False)


async def _store_under_member_lock(
    uow: UnitOfWork, member_id: uuid.UUID, store_id: uuid.UUID, now: datetime
) -> tuple[StoreVisited, Account]:
    """The active store, read by the statement that takes the member's check-in lock and then locks the
    member's points account (no round trip of their own). What is read after it sees every check-in of
    the member committed before, and the account as it stands until commit."""
    namespace, key = lock_key(_MEMBER_LOCK, member_id)
    params = {"lock_namespace": namespace, "lock_key": key, "member_id": member_id, "now": now}
    row = (await uow.session.execute(_STORE_UNDER_MEMBER_LOCK, {**params, "store_id": store_id})).first()
    if row is None:
        raise CheckInStoreNotFound()
    state = StoreState(
        fence=_fence(row),
        geofence_enabled=row.geofence_enabled,
        open_now=is_open_at(StoreStatus(row.status), row.opening_hours, row.time_zone, now),
    )
    return StoreVisited(row.id, row.name, row.time_zone, state), account_of(row)


def _fence(store: Row[Any]) -> CircleFence | PolygonFence:
    if store.fence_polygon:
        return PolygonFence(vertices=tuple((lat, lon) for lat, lon in store.fence_polygon))
    return CircleFence(center=(store.latitude, store.longitude), radius_m=store.check_in_radius_m)


async def _member_facts(
    uow: UnitOfWork, program: Program, attempt: Attempt, day: date, now: datetime
) -> MemberFacts:
    params = {
        "member_id": attempt.member_id,
        "store_id": attempt.store_id,
        "fix_at": attempt.fix_at,
        "local_day": day,
        "kept_since": now - REJECTION_WINDOW,
        **award.period_params(program, attempt.fix_at),
    }
    row = (await uow.session.execute(_MEMBER_FACTS, params)).one()
    return MemberFacts(
        neighbours=[
            KnownCheckIn(point=(p.latitude, p.longitude), fix_at=p.fix_at, accuracy_m=p.accuracy_m)
            for p in msgspec.convert(row.neighbours, list[_Position])
        ],
        existing=msgspec.convert(row.existing, DayCheckIn | None),
        rewarded_today=row.rewarded_today,
        flagged=row.flagged,
        rejections_kept=row.rejections_kept,
        period=row.period,
    )


def _rows(*rows: dict[str, Any]) -> str:
    """Rows as the JSON array `rows_sql` reads."""
    return msgspec.json.encode(rows).decode()


async def _keep_rejection(
    uow: UnitOfWork, *, policy: CheckInPolicy, attempt: Attempt, rejection: CheckInRejected, now: datetime
) -> None:
    """Keep a rejection for fraud review: its attempt with the evidence, and a timeline event.

    The event is placed at the server's time, with the time the app claimed as a property: a client's
    clock (possibly years off) never decides where anything is stored.
    """
    await lock_until_commit(uow, _MEMBER_LOCK, attempt.member_id)
    row = attempt.row(now, "rejected", reason=rejection.code, evidence=dict(rejection.extensions))
    event = EventDraft(
        member_id=attempt.member_id,
        kind=InteractionKind.CHECK_IN_REJECTED,
        occurred_at=now,
        channel=_channel(attempt.trigger),
        store_id=attempt.store_id,
        properties={"reason": rejection.code, "claimed_fix_at": attempt.fix_at.isoformat()},
    )
    params = {
        "attempt": _rows(row),
        "member_id": attempt.member_id,
        "kept_since": now - REJECTION_WINDOW,
        "kept_at_most": policy.recorded_rejections_per_day,
        **recording([event], now).params,
    }
    await uow.session.execute(_KEEP_REJECTION, params)


def _channel(trigger: Trigger) -> Channel:
    return Channel.APP if trigger is Trigger.USER_TAP else Channel.GEOFENCE


async def _accept(
    uow: UnitOfWork,
    program: Program,
    store: StoreVisited,
    account: Account,
    period: object,
    attempt: Attempt,
    check_in: DayCheckIn,
    distance_m: float,
    now: datetime,
) -> None:
    """Write the check-in, its attempt, its award and its timeline event (one statement)."""
    changes = Changes(now)
    changes.events.append(
        EventDraft(
            member_id=attempt.member_id,
            kind=InteractionKind.CHECKED_IN,
            occurred_at=attempt.fix_at,
            channel=_channel(attempt.trigger),
            store_id=store.id,
            properties={
                "trigger": attempt.trigger.value,
                "distance_m": round(distance_m),
                "points": check_in.points,
                "miles": check_in.miles,
                **({"withheld": check_in.reward_withheld} if check_in.reward_withheld else {}),
            },
        )
    )
    await award.award_check_in(
        uow,
        changes,
        program,
        account,
        period,
        points=check_in.points,
        miles=check_in.miles,
        store_name=store.name,
        earned_at=attempt.fix_at,
    )
    check_in_row = {
        **asdict(attempt),
        **msgspec.to_builtins(check_in),
        "recorded_at": now,
        "distance_m": distance_m,
    }
    rows = {"check_in": _rows(check_in_row), "attempt": _rows(attempt.row(now, "accepted"))}
    await changes.write(uow, along=(_WRITE_CHECK_IN, rows))
