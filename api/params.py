"""Query parameters shared by list endpoints: pagination and timeline filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar.params import QueryParameter

from domain.interactions import InteractionKind, Phase
from domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from timeline.schemas import TimelineFilter

PageSize = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
Cursor = Annotated[str | None, QueryParameter(max_length=64, description="next_cursor of the previous page")]
Kinds = Annotated[
    list[InteractionKind] | None, QueryParameter(name="kind", description="only these kinds (repeatable)")
]
PhaseParam = Annotated[Phase | None, QueryParameter(description="only kinds of this customer-time phase")]
Since = Annotated[datetime | None, QueryParameter(description="occurred at or after (RFC 3339)")]
Until = Annotated[datetime | None, QueryParameter(description="occurred before (RFC 3339)")]
DEFAULT_LIMIT = DEFAULT_PAGE_SIZE


def timeline_filter(
    kinds: list[InteractionKind] | None, phase: Phase | None, since: datetime | None, until: datetime | None
) -> TimelineFilter:
    return TimelineFilter(kinds=frozenset(kinds) if kinds else None, phase=phase, since=since, until=until)
