"""A campaign's outcome day by day: messages sent, members who opened, members who converted.

The same definitions as the campaign report (push.reports): an open is the member's `push_opened` naming
one of their sent deliveries; a conversion is a purchase, check-in or offer redemption within the
attribution window after the campaign was due for the member (treated members only: the curve shows what
the message was followed by; the lift against control stays the report's job). Each member counts on the
day of their first open and of their first conversion, in the retailer's zone.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import msgspec
from sqlalchemy import text

from infra.db import UnitOfWork
from push.policy import PushPolicy
from push.reports import CONVERSIONS

MAX_DAYS = 120  # a curve longer than this is not a campaign's outcome any more

_DAYS = text(
    """
    WITH sent AS (
        SELECT (sent_at AT TIME ZONE :zone)::date AS day, count(*) AS n
        FROM push_deliveries WHERE campaign_id = :campaign AND sent_at IS NOT NULL GROUP BY 1
    ), opened AS (
        SELECT day, count(*) AS n FROM (
            SELECT d.member_id, min((e.occurred_at AT TIME ZONE :zone)::date) AS day
            FROM push_deliveries d
            JOIN timeline_events e
              ON e.member_id = d.member_id AND e.kind = 'push_opened'
             AND e.properties->>'delivery_id' = d.id::text
             AND e.occurred_at >= d.first_due_at - interval '1 day'
            WHERE d.campaign_id = :campaign AND d.state IN ('sent', 'unconfirmed')
            GROUP BY 1
        ) firsts GROUP BY 1
    ), due AS (
        SELECT member_id, min(first_due_at) AS since
        FROM push_deliveries
        WHERE campaign_id = :campaign AND state IN ('sent', 'unconfirmed')
        GROUP BY 1
    ), converted AS (
        SELECT day, count(*) AS n FROM (
            SELECT due.member_id, min((e.occurred_at AT TIME ZONE :zone)::date) AS day
            FROM due
            JOIN timeline_events e
              ON e.member_id = due.member_id
             AND e.kind = ANY(CAST(:kinds AS interaction_kind[]))
             AND e.occurred_at >= due.since AND e.occurred_at < due.since + :window
            GROUP BY 1
        ) firsts GROUP BY 1
    )
    SELECT day, coalesce(sum(s), 0), coalesce(sum(o), 0), coalesce(sum(c), 0) FROM (
        SELECT day, n AS s, 0 AS o, 0 AS c FROM sent
        UNION ALL SELECT day, 0, n, 0 FROM opened
        UNION ALL SELECT day, 0, 0, n FROM converted
    ) everything GROUP BY day ORDER BY day
    """
)


class CampaignDay(msgspec.Struct, frozen=True):
    day: date
    sent: int
    opened: int
    converted: int


async def campaign_days(
    uow: UnitOfWork, campaign_id: uuid.UUID, policy: PushPolicy, time_zone: str
) -> list[CampaignDay]:
    """Every day from the first to the last with any outcome (at most `MAX_DAYS`), zeros included."""
    rows = (
        await uow.session.execute(
            _DAYS,
            {
                "campaign": campaign_id,
                "zone": time_zone,
                "kinds": list(CONVERSIONS),
                "window": timedelta(hours=policy.attribution_hours),
            },
        )
    ).all()
    if not rows:
        return []
    counts = {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in rows}
    first = rows[0][0]
    span = min((rows[-1][0] - first).days + 1, MAX_DAYS)
    days = [first + timedelta(days=offset) for offset in range(span)]
    return [CampaignDay(day, *counts.get(day, (0, 0, 0))) for day in days]
