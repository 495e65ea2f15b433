"""At the register: who a scanned member code belongs to, and the code's use by a sale.

A rotating code stays valid for about a minute. While it is, it is tied to the first store it was used
at (another store is refused), and it pays with points at most once: a photographed code cannot fund
several redemptions. Sales at the same store that only earn may share a code, also concurrently.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from accounts.devices import active_device_secret
from accounts.tables import Member
from domain.interactions import Channel, InteractionKind, SubjectType
from infra.db import UnitOfWork
from points import ledger
from points.errors import (
    InvalidMemberCode,
    MemberCodeAlreadyRedeemed,
    MemberCodeUsedElsewhere,
    StaticCardNotAllowed,
)
from points.member_codes import ScannedCode, StaticCard, parse_scanned, step_window, verify
from points.miles import stage_of
from points.program import Program
from points.schemas import MemberAtRegister, ResolvedMember
from points.tables import MemberCodeUse, Purchase
from timeline.rules import EventDraft, Properties


@dataclass(frozen=True)
class Register:
    """Who is asking: the authenticated terminal's store and terminal, and the server time."""

    store_id: uuid.UUID
    terminal_id: uuid.UUID
    now: datetime


@dataclass(frozen=True)
class CodeCheck:
    member: Member
    code: str | None  # the rotating code, tracked while valid; None for a printed card number
    valid_until: datetime | None


async def member_for_code(
    uow: UnitOfWork, program: Program, code_key: str, text: str, now: datetime
) -> CodeCheck:
    scanned = parse_scanned(text)
    if scanned is None:
        raise InvalidMemberCode()
    member = (
        await uow.session.execute(
            select(Member).where(Member.card_number == scanned.card_number, Member.erased_at.is_(None))
        )
    ).scalar_one_or_none()
    if member is None:
        raise InvalidMemberCode()
    if isinstance(scanned, StaticCard):
        if not program.allow_static_card_numbers:
            raise StaticCardNotAllowed()
        return CodeCheck(member, None, None)
    return await _check_rotating(uow, code_key, member, scanned, now)


async def _check_rotating(
    uow: UnitOfWork, code_key: str, member: Member, scanned: ScannedCode, now: datetime
) -> CodeCheck:
    secret = await active_device_secret(uow, member.id, scanned.slot, code_key)
    step = None if secret is None else verify(scanned, secret, now)
    if step is None:
        raise InvalidMemberCode()
    # A code of step s is accepted through step s+1 (clock skew), so it stays "in use" until then.
    _, valid_until = step_window(step + 1)
    code = f"{scanned.card_number}{scanned.slot:02d}{scanned.step_low:02d}{scanned.otp}"
    return CodeCheck(member, code, valid_until)


async def use_code(uow: UnitOfWork, check: CodeCheck, register: Register, *, redeeming: bool) -> None:
    """Tie the code to this store while it is valid; MemberCodeUsedElsewhere if another store has it,
    MemberCodeAlreadyRedeemed if it already paid with points and this sale redeems too.

    The row is created if missing (a concurrent sale with the same code waits for the first to commit
    and then finds it), then locked, so the store and redemption checks see every earlier use.
    """
    if check.code is None or check.valid_until is None:
        return
    now = register.now
    await uow.session.execute(
        pg_insert(MemberCodeUse)
        .values(code=check.code, store_id=register.store_id, used_at=now, expires_at=check.valid_until)
        .on_conflict_do_nothing()
    )
    use = (
        await uow.session.execute(
            select(MemberCodeUse).where(MemberCodeUse.code == check.code).with_for_update()
        )
    ).scalar_one()
    if use.expires_at <= now:  # a leftover of an earlier validity window not yet purged: start afresh
        use.store_id, use.used_at, use.expires_at, use.redeemed_at = (
            register.store_id,
            now,
            check.valid_until,
            None,
        )
    if use.store_id != register.store_id:
        raise MemberCodeUsedElsewhere()
    if redeeming:
        if use.redeemed_at is not None:
            raise MemberCodeAlreadyRedeemed()
        use.redeemed_at = now


def _initial(member: Member) -> str:
    return (member.display_name or "?").strip()[:1].upper()


async def register_view(uow: UnitOfWork, program: Program, member: Member, now: datetime) -> MemberAtRegister:
    return MemberAtRegister(
        card_number=member.card_number,
        display_initial=_initial(member),
        stage=await stage_of(uow, program, member.id, now),
    )


async def resolve_member(
    uow: UnitOfWork, program: Program, code_key: str, text: str, now: datetime
) -> ResolvedMember:
    """What the cashier sees after scanning: who (initial only), stage, and what can be redeemed."""
    check = await member_for_code(uow, program, code_key, text, now)
    return ResolvedMember(
        member=await register_view(uow, program, check.member, now),
        balances=(await ledger.balances(uow, check.member.id, now)).view(),
    )


def sale_event(
    purchase: Purchase, kind: InteractionKind, properties: Properties, occurred_at: datetime | None = None
) -> EventDraft:
    """An event about a sale (at its store, about its transaction); at the sale time unless told otherwise."""
    return EventDraft(
        member_id=purchase.member_id,
        kind=kind,
        occurred_at=occurred_at or purchase.sold_at,
        channel=Channel.POS,
        store_id=purchase.store_id,
        subject_type=SubjectType.TRANSACTION,
        subject_ref=str(purchase.id),
        properties=properties,
    )
