"""Request and response bodies of the push endpoints (console campaigns and segments)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from domain.rates import Rate
from domain.text import NOT_BLANK, URL_CHARACTER
from points.rules.stages import Stage
from push.rules.report import Lift
from push.rules.scheduling import QuietHours, Schedule
from push.rules.segments import Segment
from push.tables import CampaignState
from timeline.traits import LifecycleStage

VariantKey = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,16}$", examples=["A"])]
CampaignName = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=NOT_BLANK)]
# An app link (tsunagari://offers/42) or a web page; no spaces, no javascript: or data: URLs.
DeepLink = Annotated[
    str,
    msgspec.Meta(
        pattern=rf"^(https://|(?!javascript:|data:|vbscript:)[a-z][a-z0-9+.\-]*://){URL_CHARACTER}+$",
        max_length=512,
        examples=["tsunagari://offers/winter-linen"],
    ),
]


class Variant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One version of the message; members are split between variants in proportion to `weight`."""

    key: VariantKey
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NOT_BLANK)]
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=NOT_BLANK)]
    weight: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1


Variants = Annotated[list[Variant], msgspec.Meta(min_length=1, max_length=5)]
ControlPercent = Annotated[int, msgspec.Meta(ge=0, le=50)]


class CampaignDraft(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: CampaignName
    variants: Variants
    schedule: Schedule
    segment: Segment = msgspec.field(default_factory=Segment)
    deep_link: DeepLink | None = None
    quiet_hours: QuietHours | None = None  # None: the program's (TSUNAGARI_PUSH_POLICY)
    respect_quiet_hours: bool = True
    control_percent: ControlPercent = 0  # this campaign's own hold-out, besides the global one
    transactional: bool = False  # exempt from caps and from the control groups


class CampaignChanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fields left out stay as they are; `deep_link` or `quiet_hours` sent as null are removed (the
    program's quiet hours apply again). Only a draft can change."""

    name: CampaignName | UnsetType = UNSET
    variants: Variants | UnsetType = UNSET
    schedule: Schedule | UnsetType = UNSET
    segment: Segment | UnsetType = UNSET
    deep_link: DeepLink | UnsetType | None = UNSET
    quiet_hours: QuietHours | UnsetType | None = UNSET
    respect_quiet_hours: bool | UnsetType = UNSET
    control_percent: ControlPercent | UnsetType = UNSET
    transactional: bool | UnsetType = UNSET


class CampaignView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    state: CampaignState
    transactional: bool
    variants: list[Variant]
    schedule: Schedule
    segment: Segment
    deep_link: str | None
    quiet_hours: QuietHours | None
    respect_quiet_hours: bool
    control_percent: int
    created_at: datetime
    updated_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    deliveries: dict[str, int]  # by state


class CampaignPage(msgspec.Struct, frozen=True):
    items: list[CampaignView]
    next_cursor: str | None


class SegmentQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    segment: Segment


class SegmentEstimate(msgspec.Struct, frozen=True):
    size: int
    sample: list[uuid.UUID]  # up to 20 members in it
    profiles_as_of: datetime | None  # traits are as of this moment (the oldest profile counted)


class SampleMember(msgspec.Struct, frozen=True):
    """One member of a segment, as the console shows a sample of it."""

    member_id: uuid.UUID
    display_name: str
    card_number: str
    lifecycle_stage: LifecycleStage  # as of the member's audience profile
    stage: Stage
    health_score: int


class MessagePreview(msgspec.Struct, frozen=True):
    member_id: uuid.UUID
    variant: str
    title: str
    body: str
    data: dict[str, str]


class GroupReport(msgspec.Struct, frozen=True):
    """One variant, or a control group, of a campaign."""

    group: str  # a variant key, "control" (this campaign's) or "global_control"
    members: int  # assigned to this group
    deliveries: int  # to devices (a member may have several)
    sent: int
    failed: int
    unconfirmed: int
    suppressed: dict[str, int]  # by reason
    opened: int  # members who opened the message
    converted: int  # members who bought, checked in or redeemed within the attribution window
    conversion: Rate
    attributed: int  # conversions whose last opened push before them was this campaign's
    lift: Lift | None  # against the control group (the campaign's, else the global one)


class CampaignReport(msgspec.Struct, frozen=True):
    campaign_id: uuid.UUID
    state: CampaignState
    attribution_hours: int
    occurrences: list[date]
    groups: list[GroupReport]
