"""Which client-reported events are acceptable, and the shape of every recorded event."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

import msgspec

from domain.interactions import CLIENT_KINDS, Channel, InteractionKind, SubjectType
from domain.times import normalise_times

MAX_BATCH_EVENTS = 100
MAX_EVENT_AGE = timedelta(days=7)
MAX_CLOCK_AHEAD = timedelta(minutes=5)
MAX_PROPERTIES = 20
MAX_PROPERTIES_BYTES = 2048
MAX_LIST_ITEMS = 50
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

PropertyValue = str | int | bool | list[str]
Properties = dict[str, PropertyValue]
SubjectRef = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class EventDraft(msgspec.Struct, frozen=True, kw_only=True):
    """An interaction about to be recorded; the timeline adds its id, phase and recording time."""

    member_id: uuid.UUID | None
    kind: InteractionKind
    occurred_at: datetime
    channel: Channel
    store_id: uuid.UUID | None = None
    subject_type: SubjectType | None = None
    subject_ref: str | None = None
    properties: Properties = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        # Every recorded time is UTC, whatever offset it arrived with: traits bin by its hour and day.
        normalise_times(self, "occurred_at")


class EventRejection(StrEnum):
    """Why one event of a client batch was not recorded (the others still are)."""

    KIND_UNKNOWN = "kind_unknown"
    KIND_NOT_ALLOWED = "kind_not_allowed"
    TOO_OLD = "too_old"
    IN_FUTURE = "in_future"
    INVALID_PROPERTIES = "invalid_properties"
    UNKNOWN_STORE = "unknown_store"
    DUPLICATE_IN_BATCH = "duplicate_in_batch"


REJECTION_DETAIL = {
    EventRejection.KIND_UNKNOWN: "not an interaction kind",
    EventRejection.KIND_NOT_ALLOWED: "only the server records this kind (the app may send: "
    + ", ".join(sorted(CLIENT_KINDS))
    + ")",
    EventRejection.TOO_OLD: f"occurred more than {MAX_EVENT_AGE.days} days ago",
    EventRejection.IN_FUTURE: f"occurred more than {MAX_CLOCK_AHEAD} (h:mm:ss) ahead of the server clock",
    EventRejection.INVALID_PROPERTIES: f"properties: at most {MAX_PROPERTIES} names of [a-z0-9_] "
    f"(40 characters), lists of at most {MAX_LIST_ITEMS} strings, {MAX_PROPERTIES_BYTES} bytes as JSON",
    EventRejection.UNKNOWN_STORE: "no such store",
    EventRejection.DUPLICATE_IN_BATCH: "this client_event_id appears earlier in the same batch",
}


def client_event_rejection(
    kind: str, occurred_at: datetime, properties: Properties, now: datetime
) -> EventRejection | None:
    """None when the app may record this event now; else the reason it may not."""
    if kind not in InteractionKind.__members__.values():
        return EventRejection.KIND_UNKNOWN
    if InteractionKind(kind) not in CLIENT_KINDS:
        return EventRejection.KIND_NOT_ALLOWED
    if occurred_at < now - MAX_EVENT_AGE:
        return EventRejection.TOO_OLD
    if occurred_at > now + MAX_CLOCK_AHEAD:
        return EventRejection.IN_FUTURE
    if not properties_are_acceptable(properties):
        return EventRejection.INVALID_PROPERTIES
    return None


def properties_are_acceptable(properties: Properties) -> bool:
    if len(properties) > MAX_PROPERTIES:
        return False
    for name, value in properties.items():
        if not _PROPERTY_NAME.match(name):
            return False
        if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
            return False
    return len(msgspec.json.encode(properties)) <= MAX_PROPERTIES_BYTES
