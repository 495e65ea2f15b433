"""Each member's own message: a variant's title and body with their fields filled in.

Only the fields a campaign's variants use are looked up, a batch of members at a time, through the
capabilities that own them: names (accounts), points and stage (points), favourite store (the audience
profile, named by stores).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select

from accounts.members import display_names
from infra.db import UnitOfWork
from points.ledger import held_points
from points.miles import stages_of
from points.program import Program
from push.rules.templates import fields_in, render
from push.schemas import Variant
from push.tables import AudienceProfile
from stores.service import store_names

EXPIRING_HORIZON = timedelta(days=30)  # "points expiring soon" means within 30 days


def render_variant(variant: Variant, values: dict[str, str]) -> tuple[str, str]:
    return render(variant.title, values), render(variant.body, values)


async def personal_values(
    uow: UnitOfWork,
    program: Program,
    member_ids: list[uuid.UUID],
    variants: Sequence[Variant],
    now: datetime,
) -> dict[uuid.UUID, dict[str, str]]:
    """The fields the variants use, per member; members erased (or unknown) are left out."""
    used = set().union(*(fields_in(v.title) | fields_in(v.body) for v in variants))
    names = await display_names(uow, member_ids)
    values: dict[uuid.UUID, dict[str, str]] = {
        m: {"display_name": names[m]} for m in member_ids if m in names
    }
    present = list(values)
    if used & {"points_balance", "points_expiring", "points_expiring_on"}:
        for member_id, held in (await held_points(uow, present, now, EXPIRING_HORIZON)).items():
            values[member_id] |= {
                "points_balance": f"{held.available:,}",
                "points_expiring": f"{held.expiring:,}",
                "points_expiring_on": held.expiring_at.date().isoformat() if held.expiring_at else "",
            }
    if "stage" in used:
        for member_id, stage in (await stages_of(uow, program, present, now)).items():
            values[member_id]["stage"] = stage.value.title()
    if "favourite_store" in used:
        rows = await uow.session.execute(
            select(AudienceProfile.member_id, AudienceProfile.favourite_store_id).where(
                AudienceProfile.member_id.in_(present)
            )
        )
        favourites = {member_id: store_id for member_id, store_id in rows}
        names_of_stores = await store_names(uow, [s for s in favourites.values() if s is not None])
        for member_id in present:
            store = favourites.get(member_id)
            values[member_id]["favourite_store"] = names_of_stores.get(store, "") if store else ""
    return values
