"""Query parameters shared by list endpoints: pagination and timeline filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from domain.interactions import InteractionKind, Phase
from domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from domain.times import to_utc
from timeline.schemas import TimelineFilter

PageSize = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
Cursor = Annotated[str | None, QueryParameter(max_length=64, description="next_cursor of the previous page")]
Kinds = Annotated[
    list[InteractionKind] | None, QueryParameter(name="kind", description="only these kinds (repeatable)")
]
PhaseParam = Annotated[Phase | None, QueryParameter(description="only kinds of this customer-time phase")]
Since = Annotated[datetime | None, QueryParameter(description="occurred at or after (RFC 3339 with offset)")]
Until = Annotated[datetime | None, QueryParameter(description="occurred before (RFC 3339 with offset)")]
DEFAULT_LIMIT = DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class TimelineQuery:
    filters: TimelineFilter
    cursor: str | None
    limit: int


def provide_timeline_query(
    kinds: Kinds = None,
    phase: PhaseParam = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: PageSize = DEFAULT_LIMIT,
) -> TimelineQuery:
    """The filters and page every timeline listing takes, declared once."""
    filters = TimelineFilter(
        kinds=frozenset(kinds) if kinds else None,
        phase=phase,
        since=utc_query_time("since", since),
        until=utc_query_time("until", until),
    )
    return TimelineQuery(filters, cursor, limit)


def utc_query_time(name: str, value: datetime | None) -> datetime | None:
    """A time from the query string, in UTC; one without an offset is refused (its zone is unknown)."""
    if value is None:
        return None
    try:
        return to_utc(value)
    except ValueError as error:
        raise ValidationException(
            detail=f"{name}: {error}", extra=[{"message": str(error), "key": name, "source": "query"}]
        ) from error


TIMELINE_QUERY = {"timeline_query": Provide(provide_timeline_query, sync_to_thread=False)}
TimelineQueryDep = NamedDependency[TimelineQuery]
