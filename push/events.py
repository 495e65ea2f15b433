"""The timeline events a campaign leaves on its members' timelines: sent, or held back and why."""

from __future__ import annotations

import uuid
from datetime import datetime

from domain.interactions import Channel, InteractionKind, SubjectType
from timeline.rules import EventDraft, Properties


def campaign_event(
    kind: InteractionKind,
    member_id: uuid.UUID,
    campaign_id: uuid.UUID,
    delivery_id: uuid.UUID,
    group: str,
    reason: str | None,
    at: datetime,
) -> EventDraft:
    """`push_sent` or `push_suppressed`; the app's `push_received` / `push_opened` carry the same
    `delivery_id`, which is how opens are matched to sends."""
    properties: Properties = {"delivery_id": str(delivery_id), "group": group}
    if reason:
        properties["reason"] = reason
    return EventDraft(
        member_id=member_id,
        kind=kind,
        occurred_at=at,
        channel=Channel.PUSH,
        subject_type=SubjectType.CAMPAIGN,
        subject_ref=str(campaign_id),
        properties=properties,
    )
