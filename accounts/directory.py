"""Finding members for staff: by the card number they show, or by their email address.

Erased members are never found (they have no card holder any more, and no email).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from sqlalchemy import ColumnElement, case, or_, select

from accounts.errors import InvalidMemberSearch
from accounts.rules import MAX_SEARCH_TEXT_LENGTH, like_prefix, typed_card_number
from accounts.tables import Member
from infra.db import UnitOfWork

MAX_RESULTS = 50


class MemberSummary(msgspec.Struct, frozen=True):
    id: uuid.UUID
    card_number: str
    email: str
    display_name: str
    joined_at: datetime


_SUMMARY_COLUMNS = (Member.id, Member.card_number, Member.email, Member.display_name, Member.created_at)


def _summary(
    member_id: uuid.UUID, card_number: str, email: str | None, display_name: str | None, created_at: datetime
) -> MemberSummary:
    return MemberSummary(
        id=member_id,
        card_number=card_number,
        email=email or "",
        display_name=display_name or "",
        joined_at=created_at,
    )


async def search_members(uow: UnitOfWork, text: str, limit: int) -> list[MemberSummary]:
    """Members whose card number is `text` (typed with or without the spaces or hyphens of the printed
    card), or whose email is or starts with `text` (any case; `%` and `_` are plain characters).

    An exact card number or email comes first, then emails in order. InvalidMemberSearch for a text
    longer than an email can be or a `limit` outside 1..50; a blank text finds nobody.
    """
    if len(text) > MAX_SEARCH_TEXT_LENGTH:
        raise InvalidMemberSearch(f"the search text may have at most {MAX_SEARCH_TEXT_LENGTH} characters")
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidMemberSearch(f"limit must be between 1 and {MAX_RESULTS}")
    wanted = text.strip().lower()
    if not wanted:
        return []
    card_number = typed_card_number(wanted)
    # Emails are stored lower-cased (rules.normalised_email), so a case-sensitive LIKE of the lower-cased
    # text finds them in any case, and can range-scan the email index where the collation allows.
    matches: list[ColumnElement[bool]] = [Member.email.like(like_prefix(wanted), escape="\\")]
    firsts: list[tuple[ColumnElement[bool], int]] = [(Member.email == wanted, 1)]
    if card_number is not None:
        matches.append(Member.card_number == card_number)
        firsts.insert(0, (Member.card_number == card_number, 0))
    exact = case(*firsts, else_=2)
    rows = await uow.session.execute(
        select(*_SUMMARY_COLUMNS)
        .where(Member.erased_at.is_(None), or_(*matches))
        .order_by(exact, Member.email.collate("C"), Member.id)  # byte order, whatever the locale
        .limit(limit)
    )
    return [_summary(*row) for row in rows]


async def member_summaries(uow: UnitOfWork, member_ids: list[uuid.UUID]) -> list[MemberSummary]:
    """The members among `member_ids` that are not erased, in the order given."""
    rows = await uow.session.execute(
        select(*_SUMMARY_COLUMNS).where(Member.id.in_(member_ids), Member.erased_at.is_(None))
    )
    found = {row.id: _summary(*row) for row in rows}
    return [found[member_id] for member_id in member_ids if member_id in found]
