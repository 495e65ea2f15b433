"""Everyone's engagement hours: the sum of every member's app-open, push-open and check-in histograms."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from infra.db import Database, UnitOfWork
from timeline.engagement import HOURS_PER_WEEK
from timeline.tables import PopulationEngagement

_SUM_BY_HOUR = text(
    """
    SELECT hour, COALESCE(SUM(
        COALESCE((counters -> 'app_open_hours' ->> hour)::bigint, 0)
        + COALESCE((counters -> 'push_open_hours' ->> hour)::bigint, 0)
        + COALESCE((counters -> 'check_in_hours' ->> hour)::bigint, 0)
    ), 0)
    FROM generate_series(0, 167) AS hour LEFT JOIN member_trait_counters ON true
    GROUP BY hour ORDER BY hour
    """
)


async def refresh_population(db: Database, now: datetime) -> int:
    """Recompute the population's histogram (in PostgreSQL, without loading members); returns its total."""
    async with db.unit_of_work() as uow:
        hours = [int(total) for _, total in await uow.session.execute(_SUM_BY_HOUR)]
        members = (await uow.session.execute(text("SELECT count(*) FROM member_trait_counters"))).scalar_one()
        values = {"id": 1, "hours": hours, "members": members, "updated_at": now}
        statement = pg_insert(PopulationEngagement).values(**values)
        await uow.session.execute(
            statement.on_conflict_do_update(
                index_elements=["id"], set_={k: v for k, v in values.items() if k != "id"}
            )
        )
    return sum(hours)


async def population_hours(uow: UnitOfWork) -> list[int]:
    """The last refreshed histogram; all zeros before the first refresh."""
    row = await uow.session.get(PopulationEngagement, 1)
    return list(row.hours) if row is not None else [0] * HOURS_PER_WEEK
