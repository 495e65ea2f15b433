"""At the register: who a scanned member code belongs to, and the code's use by a sale.

A rotating code stays valid for about a minute. While it is, it is tied to the first store it was used
at (another store is refused), and it pays with points at most once: a photographed code cannot fund
several redemptions. Sales at the same store that only earn may share a code, also concurrently.

A sale finds the code's member and device, records the code's use and locks the member's account in
one statement (`scan_for_sale`); the code's one-time password is checked as soon as the device's salt
is back, and a code that fails it fails the sale, so nothing that statement wrote is kept.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from accounts.devices import card_holder_sql, code_secret
from domain.interactions import Channel, InteractionKind, SubjectType
from domain.keys import KeyRing
from infra.db import UnitOfWork
from points import ledger
from points.changes import Account, Sale
from points.errors import (
    InvalidMemberCode,
    MemberCodeAlreadyRedeemed,
    MemberCodeUsedElsewhere,
    StaticCardNotAllowed,
)
from points.member_codes import (
    ScannedCode,
    StaticCard,
    candidate_step,
    code_text,
    parse_scanned,
    step_window,
    verify,
)
from points.program import Program
from points.rules.stages import Stage
from points.schemas import MemberAtRegister, ResolvedMember
from points.service import standing
from timeline.rules import EventDraft, Properties


@dataclass(frozen=True)
class Register:
    """Who is asking: the authenticated terminal's store and terminal, and the server time."""

    store_id: uuid.UUID
    terminal_id: uuid.UUID
    now: datetime


@dataclass(frozen=True)
class Holder:
    """The member a scanned code belongs to."""

    member_id: uuid.UUID
    card_number: str
    display_name: str | None

    def at_register(self, stage: Stage) -> MemberAtRegister:
        """What the cashier sees: the initial only, and the stage."""
        initial = (self.display_name or "?").strip()[:1].upper()
        return MemberAtRegister(card_number=self.card_number, display_initial=initial, stage=stage)


def _holder(row: Any) -> Holder:
    return Holder(row.member_id, row.card_number, row.display_name)


_HOLDER = text(card_holder_sql(":card_number", ":slot"))
_TOTALS = ", ".join(f"locked_account.{total}" for total in ledger.TOTALS)

# The code's use is created, or renewed when it outlived its validity, or kept (and marked paid with
# points when this sale redeems); a use at another store, or a second redemption, leaves it as it is and
# returns nothing, and then no account is locked either. The account is locked after the code's use
# (its insert reads `code_use`): every sale takes the two locks in that order.
_ROTATING_SALE = text(
    f"""
WITH holder AS ({card_holder_sql(":card_number", ":slot")}),
code_use AS (
    INSERT INTO member_code_uses AS used (code, store_id, used_at, expires_at, redeemed_at)
    SELECT CAST(:code AS varchar), CAST(:store_id AS uuid), CAST(:now AS timestamptz),
           CAST(:valid_until AS timestamptz), CASE WHEN :redeeming THEN CAST(:now AS timestamptz) END
    FROM holder WHERE holder.secret_salt IS NOT NULL
    ON CONFLICT (code) DO UPDATE SET
        store_id = excluded.store_id,
        used_at = CASE WHEN used.expires_at <= excluded.used_at THEN excluded.used_at ELSE used.used_at END,
        expires_at = CASE WHEN used.expires_at <= excluded.used_at
                          THEN excluded.expires_at ELSE used.expires_at END,
        redeemed_at = CASE WHEN used.expires_at <= excluded.used_at
                           THEN excluded.redeemed_at ELSE coalesce(used.redeemed_at, excluded.redeemed_at) END
    WHERE used.expires_at <= excluded.used_at
       OR (used.store_id = excluded.store_id AND (excluded.redeemed_at IS NULL OR used.redeemed_at IS NULL))
    RETURNING used.code
),
locked_account AS ({ledger.lock_account_sql("holder, code_use", "holder.member_id")})
SELECT holder.*, {_TOTALS}
FROM holder LEFT JOIN locked_account ON true
"""  # noqa: S608 - constant SQL; values are bound
)
_STATIC_SALE = text(
    f"""
WITH holder AS ({card_holder_sql(":card_number", "NULL")}),
locked_account AS ({ledger.lock_account_sql("holder", "holder.member_id")})
SELECT holder.*, {_TOTALS} FROM holder JOIN locked_account ON true
"""  # noqa: S608 - constant SQL; values are bound
)
_CODE_USE_STORE = text("SELECT store_id FROM member_code_uses WHERE code = :code")


async def scan_for_sale(
    uow: UnitOfWork,
    program: Program,
    code_keys: KeyRing,
    register: Register,
    scanned_text: str,
    *,
    redeeming: bool,
) -> tuple[Holder, Account]:
    """The member of a scanned code, with its account locked and the code's use recorded (one statement).

    InvalidMemberCode, StaticCardNotAllowed, MemberCodeUsedElsewhere or MemberCodeAlreadyRedeemed
    when the code cannot pay or earn here.
    """
    scanned = parse_scanned(scanned_text)
    if scanned is None:
        raise InvalidMemberCode()
    if isinstance(scanned, StaticCard):
        return await _static_card_sale(uow, program, register, scanned)
    step = candidate_step(scanned, register.now)
    if step is None:
        raise InvalidMemberCode()
    # A code of step s is accepted through step s+1 (clock skew), so it stays "in use" until then.
    _, valid_until = step_window(step + 1)
    code = code_text(scanned)
    row = (
        await uow.session.execute(
            _ROTATING_SALE,
            {
                "card_number": scanned.card_number,
                "slot": scanned.slot,
                "code": code,
                "store_id": register.store_id,
                "now": register.now,
                "valid_until": valid_until,
                "redeeming": redeeming,
            },
        )
    ).one_or_none()
    if row is None or not _verified(code_keys, scanned, row, register.now):
        raise InvalidMemberCode()
    if row.lifetime_earned is None:  # the code's use was refused
        store_id = (await uow.session.execute(_CODE_USE_STORE, {"code": code})).scalar_one_or_none()
        if store_id is None:  # its use outlived the code and was purged meanwhile: the code is over
            raise InvalidMemberCode()
        raise MemberCodeUsedElsewhere() if store_id != register.store_id else MemberCodeAlreadyRedeemed()
    return _holder(row), ledger.account_of(row)


def _verified(code_keys: KeyRing, scanned: ScannedCode, row: Any, now: datetime) -> bool:
    """The code's one-time password is right for the member's device in its slot (an active one).

    A code carries no key id (its 26 digits are what registers scan), and a phone may still hold the
    secret derived from a previous code key: each accepted key is tried, at most 1 + MAX_PREVIOUS_KEYS.
    """
    secrets = (
        code_secret(key.secret, row.member_id, scanned.slot, row.secret_salt)
        for key in code_keys.accepted(now)
    )
    return any(secret is not None and verify(scanned, secret, now) is not None for secret in secrets)


async def _static_card_sale(
    uow: UnitOfWork, program: Program, register: Register, card: StaticCard
) -> tuple[Holder, Account]:
    if not program.allow_static_card_numbers:
        await _find_holder(uow, card.card_number, None)  # an unknown card is invalid before it is static
        raise StaticCardNotAllowed()
    row = (
        await uow.session.execute(_STATIC_SALE, {"card_number": card.card_number, "now": register.now})
    ).one_or_none()
    if row is None:
        raise InvalidMemberCode()
    return _holder(row), ledger.account_of(row)


async def _find_holder(uow: UnitOfWork, card_number: str, slot: int | None) -> Any:
    row = (await uow.session.execute(_HOLDER, {"card_number": card_number, "slot": slot})).one_or_none()
    if row is None:
        raise InvalidMemberCode()
    return row


async def resolve_member(
    uow: UnitOfWork, program: Program, code_keys: KeyRing, scanned_text: str, now: datetime
) -> ResolvedMember:
    """What the cashier sees after scanning: who (initial only), stage, and what can be redeemed."""
    scanned = parse_scanned(scanned_text)
    if scanned is None:
        raise InvalidMemberCode()
    if isinstance(scanned, StaticCard):
        row = await _find_holder(uow, scanned.card_number, None)
        if not program.allow_static_card_numbers:
            raise StaticCardNotAllowed()
    else:
        row = await _find_holder(uow, scanned.card_number, scanned.slot)
        if not _verified(code_keys, scanned, row, now):
            raise InvalidMemberCode()
    found = await standing(uow, program, row.member_id, now)
    return ResolvedMember(
        member=_holder(row).at_register(found.stage(program, now)), balances=found.balances.view()
    )


def sale_event(
    sale: Sale, kind: InteractionKind, properties: Properties, occurred_at: datetime | None = None
) -> EventDraft:
    """An event about a sale (at its store, about its transaction); at the sale time unless told otherwise."""
    return EventDraft(
        member_id=sale.member_id,
        kind=kind,
        occurred_at=occurred_at or sale.sold_at,
        channel=Channel.POS,
        store_id=sale.store_id,
        subject_type=SubjectType.TRANSACTION,
        subject_ref=str(sale.id),
        properties=properties,
    )
