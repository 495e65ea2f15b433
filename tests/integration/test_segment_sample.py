"""A segment's sample in the console: members of the segment, the first ones its estimate counts."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import msgspec
import pytest

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from points.rules.stages import Stage
from push.audience import estimate, sample
from push.errors import InvalidSampleSize, UnknownStore
from push.rules.segments import Segment
from tests.integration.factories import PASSWORD, bearer, sign_up
from tests.integration.push_support import add_members, profile_everyone
from timeline.traits import LifecycleStage


def segment(*conditions: dict[str, Any]) -> Segment:
    return msgspec.convert({"all": list(conditions)}, Segment)


LAPSED = segment({"field": "lifecycle_stage", "in": ["lapsed"]})


async def test_the_sample_is_the_first_members_of_the_segment_with_who_they_are(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, settings: Settings
) -> None:
    lapsed = set(await add_members(db, 24, clock.now()))  # nothing on their timeline: lapsed
    joined = [await sign_up(client) for _ in range(3)]  # new members
    await profile_everyone(db, clock, settings)
    async with db.unit_of_work() as uow:
        counted = await estimate(uow, LAPSED, clock.now())
        members = await sample(uow, LAPSED, clock.now(), 20)
        first_five = await sample(uow, LAPSED, clock.now(), 5)
        everyone = await sample(uow, segment(), clock.now())
    assert counted.size == 24
    assert len(members) == 20
    assert [member.member_id for member in members] == counted.sample
    assert {member.member_id for member in members} <= lapsed
    assert all(member.lifecycle_stage is LifecycleStage.LAPSED for member in members)
    assert all(member.stage is Stage.BASIC for member in members)
    assert all(m.display_name == f"Member {m.member_id.hex[:6]}" for m in members)  # add_members' names
    assert first_five == members[:5]
    assert [member.member_id for member in everyone] == sorted(
        lapsed | {uuid.UUID(session["member"]["id"]) for session in joined}
    )[:20]


async def test_erased_members_are_not_in_the_sample(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, settings: Settings
) -> None:
    sessions = [await sign_up(client) for _ in range(3)]
    await profile_everyone(db, clock, settings)
    new = segment({"field": "lifecycle_stage", "in": ["new"]})
    async with db.unit_of_work() as uow:
        before = await sample(uow, new, clock.now(), 20)
    assert {str(member.member_id) for member in before} == {s["member"]["id"] for s in sessions}
    assert {member.card_number for member in before} == {s["member"]["card_number"] for s in sessions}
    erased = await client.request(
        "DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(sessions[0])
    )
    assert erased.status_code == 204
    async with db.unit_of_work() as uow:
        after = await sample(uow, new, clock.now(), 20)
        counted = await estimate(uow, new, clock.now())
    assert {str(member.member_id) for member in after} == {s["member"]["id"] for s in sessions[1:]}
    assert len(after) == counted.size == 2


async def test_sample_size_is_bounded_and_stores_must_exist(db: Database, clock: SettableClock) -> None:
    async with db.unit_of_work() as uow:
        for size in (0, 21):
            with pytest.raises(InvalidSampleSize):
                await sample(uow, LAPSED, clock.now(), size)
        with pytest.raises(UnknownStore):
            await sample(
                uow, segment({"field": "favourite_store", "store_id": str(uuid.uuid4())}), clock.now()
            )
