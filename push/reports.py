"""What a campaign achieved, per variant and control group, from its deliveries and the timeline.

- **members**: assigned to the group; **deliveries**: messages to devices (a member may have several).
- **sent / failed / unconfirmed / suppressed** (by reason): the deliveries' states.
- **opened**: members whose app reported `push_opened` with the id of one of their own deliveries that
  was sent (or may have been).
- **converted**: members who bought, checked in or redeemed an offer within the attribution window
  after the moment the campaign was due for them (held-back members too: intent to treat, so a group's
  conversion rate compares with its control's over the same window).
- **attributed**: converted members whose last opened push before converting was this campaign's.
- **lift**: each variant's conversion rate over the campaign's control group (else the global one).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta

import msgspec
from sqlalchemy import text

from domain.rates import wilson
from infra.db import UnitOfWork
from push.campaigns import campaign_row
from push.policy import PushPolicy
from push.rules.deliveries import CONTROL, GLOBAL_CONTROL
from push.rules.report import lift
from push.schemas import CampaignReport, GroupReport, Variant
from push.tables import DeliveryState

CONVERSIONS = ("purchased", "checked_in", "offer_redeemed")

_STATES = text(
    """
    SELECT variant, state, coalesce(reason, ''), device_slot IS NOT NULL, count(*)
    FROM push_deliveries WHERE campaign_id = :campaign
    GROUP BY 1, 2, 3, 4
    """
)
_MEMBERS = text(
    """
    SELECT variant, count(DISTINCT member_id) FROM push_deliveries WHERE campaign_id = :campaign GROUP BY 1
    """
)
_OCCURRENCES = text(
    "SELECT DISTINCT occurrence FROM push_deliveries WHERE campaign_id = :campaign ORDER BY 1"
)
_OPENED = text(
    """
    SELECT d.variant, count(DISTINCT d.member_id)
    FROM push_deliveries d
    JOIN timeline_events e
      ON e.member_id = d.member_id AND e.kind = 'push_opened'
     AND e.properties->>'delivery_id' = d.id::text
     AND e.occurred_at >= d.first_due_at - interval '1 day'
    WHERE d.campaign_id = :campaign AND d.state IN ('sent', 'unconfirmed')
    GROUP BY 1
    """
)
# Per member and occurrence, from when the campaign was due for them: did they convert within the
# window, and was the last push they opened before converting one of this campaign's?
_CONVERTED = text(
    """
    WITH due AS (
        SELECT variant, member_id, occurrence, min(first_due_at) AS since
        FROM push_deliveries WHERE campaign_id = :campaign
        GROUP BY 1, 2, 3
    ), conversions AS (
        SELECT due.variant, due.member_id, e.occurred_at
        FROM due
        JOIN timeline_events e
          ON e.member_id = due.member_id
         AND e.kind = ANY(CAST(:kinds AS interaction_kind[]))
         AND e.occurred_at >= due.since AND e.occurred_at < due.since + :window
    )
    SELECT c.variant, count(DISTINCT c.member_id),
           count(DISTINCT c.member_id) FILTER (WHERE opened.campaign_id = :campaign)
    FROM conversions c
    LEFT JOIN LATERAL (
        SELECT d.campaign_id
        FROM timeline_events o
        JOIN push_deliveries d ON d.id::text = o.properties->>'delivery_id' AND d.member_id = o.member_id
         AND d.state IN ('sent', 'unconfirmed')
        WHERE o.member_id = c.member_id AND o.kind = 'push_opened'
          AND o.occurred_at <= c.occurred_at AND o.occurred_at > c.occurred_at - :window
        ORDER BY o.occurred_at DESC
        LIMIT 1
    ) opened ON true
    GROUP BY 1
    """
)


async def campaign_report(uow: UnitOfWork, campaign_id: uuid.UUID, policy: PushPolicy) -> CampaignReport:
    campaign = await campaign_row(uow, campaign_id)
    window = timedelta(hours=policy.attribution_hours)
    params = {"campaign": campaign_id}
    session = uow.session
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    suppressed: dict[str, dict[str, int]] = defaultdict(dict)
    for group, state, reason, to_device, count in await session.execute(_STATES, params):
        if to_device:
            counts[group]["deliveries"] += count
        counts[group][state] += count
        if state == DeliveryState.SUPPRESSED.value:
            suppressed[group][reason] = suppressed[group].get(reason, 0) + count
    members: dict[str, int] = {group: n for group, n in await session.execute(_MEMBERS, params)}
    opened: dict[str, int] = {group: n for group, n in await session.execute(_OPENED, params)}
    converted: dict[str, tuple[int, int]] = {
        group: (total, attributed)
        for group, total, attributed in await session.execute(
            _CONVERTED, params | {"kinds": list(CONVERSIONS), "window": window}
        )
    }
    occurrences = list((await session.execute(_OCCURRENCES, params)).scalars())

    variants = [v.key for v in msgspec.convert(campaign.variants, list[Variant])]
    controls = (
        [] if campaign.transactional else [CONTROL, GLOBAL_CONTROL][0 if campaign.control_percent else 1 :]
    )
    groups = variants + controls
    baseline = CONTROL if campaign.control_percent else GLOBAL_CONTROL
    base_members, (base_converted, _) = members.get(baseline, 0), converted.get(baseline, (0, 0))

    def report(group: str) -> GroupReport:
        n, (conversions, attributed) = members.get(group, 0), converted.get(group, (0, 0))
        return GroupReport(
            group=group,
            members=n,
            deliveries=counts[group]["deliveries"],
            sent=counts[group][DeliveryState.SENT.value],
            failed=counts[group][DeliveryState.FAILED.value],
            unconfirmed=counts[group][DeliveryState.UNCONFIRMED.value],
            suppressed=dict(sorted(suppressed[group].items())),
            opened=opened.get(group, 0),
            converted=conversions,
            conversion=wilson(conversions, n),
            attributed=attributed,
            lift=None
            if group in (CONTROL, GLOBAL_CONTROL) or campaign.transactional
            else lift(conversions, n, base_converted, base_members),
        )

    return CampaignReport(
        campaign_id=campaign.id,
        state=campaign.state,
        attribution_hours=policy.attribution_hours,
        occurrences=occurrences,
        groups=[report(group) for group in groups],
    )
