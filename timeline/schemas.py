"""Request and response bodies of the timeline endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from domain.interactions import Channel, InteractionKind, Phase, SubjectType
from domain.times import normalise_times
from timeline.rules import MAX_BATCH_EVENTS, Properties, SubjectRef
from timeline.traits import MemberTraits

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class Subject(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: SubjectType
    id: SubjectRef


class ClientEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One interaction the app observed. `client_event_id` makes resending it harmless."""

    client_event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=40, examples=["app_opened"])]
    occurred_at: AwareDatetime
    store_id: uuid.UUID | None = None
    subject: Subject | None = None
    properties: Properties = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        normalise_times(self, "occurred_at")


class EventBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    events: Annotated[list[ClientEvent], msgspec.Meta(min_length=1, max_length=MAX_BATCH_EVENTS)]


class EventError(msgspec.Struct, frozen=True):
    code: str
    detail: str


class EventResult(msgspec.Struct, frozen=True):
    client_event_id: str
    status: Literal["recorded", "duplicate", "rejected"]
    event_id: uuid.UUID | None = None
    error: EventError | None = None


class BatchResult(msgspec.Struct, frozen=True):
    recorded: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class TimelineEntry(msgspec.Struct, frozen=True):
    id: uuid.UUID
    kind: InteractionKind
    phase: Phase
    occurred_at: datetime
    recorded_at: datetime
    channel: Channel
    member_id: uuid.UUID | None
    store_id: uuid.UUID | None
    subject: Subject | None
    properties: Properties


class TimelinePage(msgspec.Struct, frozen=True):
    items: list[TimelineEntry]
    next_cursor: str | None


class TimelineFilter(msgspec.Struct, frozen=True):
    kinds: frozenset[InteractionKind] | None = None
    phase: Phase | None = None
    since: datetime | None = None
    until: datetime | None = None


class MemberTraitsView(msgspec.Struct, frozen=True):
    member_id: uuid.UUID
    time_zone: str
    traits: MemberTraits
