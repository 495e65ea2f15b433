"""Keyset pagination over time-ordered UUID primary keys."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from domain.pagination import decode_cursor, encode_cursor
from infra.db import UnitOfWork

Row = TypeVar("Row")


async def fetch_page(
    uow: UnitOfWork,
    query: Select[Row],
    id_column: InstrumentedAttribute[uuid.UUID],
    cursor: str | None,
    limit: int,
    *,
    newest_first: bool = False,
) -> tuple[list[Row], str | None]:
    """One page of `query` after `cursor`, and the cursor of the next page (None on the last page)."""
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(id_column < after if newest_first else id_column > after)
    order: Any = id_column.desc() if newest_first else id_column.asc()
    rows = list((await uow.session.execute(query.order_by(order).limit(limit + 1))).scalars())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(getattr(rows[-1], id_column.key))
