"""The trait half of the audience language: conditions on a member's traits, as data and as a pure test.

Push segments (push.rules.segments) add facts kept elsewhere (stage, expiring points, devices, visits);
offers target with these trait conditions alone, checked against the traits computed for the member.
Each condition names its `field`; an unknown field, value or key is refused (400 validation_failed).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated, Literal

import msgspec

from domain.errors import RuleViolation
from timeline.traits import LifecycleStage, MemberTraits

Score = Annotated[int, msgspec.Meta(ge=0, le=5)]
MAX_CONDITIONS = 20


class ConditionBase(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="field"):
    pass


class LifecycleStageIn(ConditionBase, frozen=True, tag="lifecycle_stage"):
    # As many as there are stages: more could only repeat one, and every member is tested against the list.
    in_: Annotated[list[LifecycleStage], msgspec.Meta(min_length=1, max_length=len(LifecycleStage))] = (
        msgspec.field(name="in")
    )


class HealthScoreBetween(ConditionBase, frozen=True, tag="health_score"):
    min: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    max: Annotated[int, msgspec.Meta(ge=0, le=100)] = 100


class RfmBetween(ConditionBase, frozen=True, tag="rfm"):
    score: Literal["recency", "frequency", "monetary"]
    min: Score = 0
    max: Score = 5


class FavouriteStoreIs(ConditionBase, frozen=True, tag="favourite_store"):
    store_id: uuid.UUID


TraitCondition = LifecycleStageIn | HealthScoreBetween | RfmBetween | FavouriteStoreIs


def check_ranges(conditions: Iterable[ConditionBase]) -> None:
    """A range whose minimum exceeds its maximum matches nobody: refuse it rather than save it."""
    for condition in conditions:
        if isinstance(condition, HealthScoreBetween | RfmBetween) and condition.min > condition.max:
            raise RuleViolation(f"{condition.__struct_config__.tag}: min must not exceed max")


class TraitSegment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Members whose traits meet every condition (no condition: every member)."""

    all: Annotated[list[TraitCondition], msgspec.Meta(max_length=MAX_CONDITIONS)] = msgspec.field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        check_ranges(self.all)

    def store_ids(self) -> set[uuid.UUID]:
        return {c.store_id for c in self.all if isinstance(c, FavouriteStoreIs)}


def meets(traits: MemberTraits, condition: TraitCondition) -> bool:
    if isinstance(condition, LifecycleStageIn):
        return traits.lifecycle_stage in condition.in_
    if isinstance(condition, HealthScoreBetween):
        return condition.min <= traits.health_score <= condition.max
    if isinstance(condition, RfmBetween):
        score: int = getattr(traits.rfm, condition.score)
        return condition.min <= score <= condition.max
    return traits.favourite_store_id == condition.store_id


def in_segment(traits: MemberTraits, segment: TraitSegment) -> bool:
    return all(meets(traits, condition) for condition in segment.all)
