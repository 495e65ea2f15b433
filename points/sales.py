"""The register: resolve a scanned member code, record a sale (redeem, earn), record a refund.

Each runs in the request's unit of work, so the sale, its ledger entries, its miles, its timeline
events and the POS's idempotency record commit together or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import select

from accounts.tables import Member
from domain.interactions import Channel, InteractionKind, SubjectType
from infra.db import UnitOfWork
from points import ledger
from points.devices import active_device_secret
from points.errors import (
    CurrencyNotSupported,
    InvalidMemberCode,
    MemberCodeUsedElsewhere,
    PurchaseNotFound,
    ReceiptAlreadyPosted,
    RedemptionExceedsTotal,
    RedemptionNeedsMember,
    RefundAlreadyPosted,
    RefundExceedsSale,
    SaleTimeOutOfRange,
    StaticCardNotAllowed,
    TotalMismatch,
    UnknownLine,
)
from points.ledger import LotTake
from points.member_codes import ScannedCode, StaticCard, parse_scanned, step_window, verify
from points.miles import add_miles, remove_miles, stage_of
from points.program import Program
from points.rules import SaleLine, award_for_basket, proportional_share
from points.schemas import (
    MemberAtRegister,
    PurchaseRequest,
    PurchaseResult,
    RefundRequest,
    RefundResult,
    ResolvedMember,
)
from points.tables import EntryKind, MemberCodeUse, PointEntry, Purchase, Refund
from timeline.recording import record_many
from timeline.rules import EventDraft, Properties

CLOCK_AHEAD = timedelta(minutes=5)


@dataclass(frozen=True)
class Register:
    """Who is asking: the authenticated terminal's store and terminal, and the server time."""

    store_id: uuid.UUID
    terminal_id: uuid.UUID
    now: datetime


@dataclass(frozen=True)
class CodeCheck:
    member: Member
    code: str | None  # the rotating code, tracked so it cannot be used at another store meanwhile
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


def _initial(member: Member) -> str:
    return (member.display_name or "?").strip()[:1].upper()


async def _register_view(
    uow: UnitOfWork, program: Program, member: Member, now: datetime
) -> MemberAtRegister:
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
        member=await _register_view(uow, program, check.member, now),
        balances=(await ledger.balances(uow, check.member.id, now)).view(),
    )


def _validate_sale(program: Program, sale: PurchaseRequest, now: datetime) -> list[SaleLine]:
    if sale.currency != program.currency:
        raise CurrencyNotSupported(f"this program runs in {program.currency}")
    if not now - timedelta(days=program.late_posting_max_days) <= sale.sold_at <= now + CLOCK_AHEAD:
        raise SaleTimeOutOfRange(f"sold_at must be within the last {program.late_posting_max_days} days")
    lines = [SaleLine(**msgspec.structs.asdict(line)) for line in sale.lines]
    if len({line.line_no for line in lines}) != len(lines):
        raise TotalMismatch("line numbers must be unique")
    if sum(line.amount_minor for line in lines) != sale.total_minor:
        raise TotalMismatch()
    if sale.points_to_redeem and sale.member_code is None:
        raise RedemptionNeedsMember()
    if sale.points_to_redeem * program.earning.point_value_minor > sale.total_minor:
        raise RedemptionExceedsTotal()
    return lines


async def _claim_code(uow: UnitOfWork, check: CodeCheck, register: Register) -> None:
    if check.code is None or check.valid_until is None:
        return
    existing = await uow.session.get(MemberCodeUse, check.code)
    if existing is not None and existing.expires_at > register.now:
        if existing.store_id != register.store_id:
            raise MemberCodeUsedElsewhere()
        return
    if existing is not None:
        await uow.session.delete(existing)
        await uow.session.flush()
    await uow.add_unique(
        MemberCodeUse(
            code=check.code, store_id=register.store_id, used_at=register.now, expires_at=check.valid_until
        ),
        MemberCodeUsedElsewhere(),
    )


async def record_purchase(
    uow: UnitOfWork, program: Program, code_key: str, register: Register, sale: PurchaseRequest
) -> PurchaseResult:
    now = register.now
    lines = _validate_sale(program, sale, now)
    check = None
    if sale.member_code is not None:
        check = await member_for_code(uow, program, code_key, sale.member_code, now)
        await _claim_code(uow, check, register)
    member = check.member if check else None
    award = award_for_basket(program.earning, lines, register.store_id, sale.sold_at, sale.points_to_redeem)
    purchase = Purchase(
        store_id=register.store_id,
        terminal_id=register.terminal_id,
        receipt_id=sale.receipt_id,
        member_id=member.id if member else None,
        sold_at=sale.sold_at,
        posted_at=now,
        currency=sale.currency,
        total_minor=sale.total_minor,
        lines=msgspec.to_builtins(sale.lines),
        points_redeemed=sale.points_to_redeem,
        points_earned=award.points if member else 0,
        miles_earned=award.miles if member else 0,
        award=msgspec.to_builtins(award),
        refunded_minor=0,
        points_reversed=0,
        miles_reversed=0,
        points_returned=0,
    )
    await uow.add_unique(purchase, ReceiptAlreadyPosted(receipt_id=sale.receipt_id))
    events = [_purchase_event(purchase, lines)]
    if member is None:
        await record_many(uow, events, now)
        return PurchaseResult(
            purchase_id=purchase.id,
            receipt_id=purchase.receipt_id,
            member=None,
            points_redeemed=0,
            points_earned=0,
            points_repaid=0,
            miles_earned=0,
            stages_reached=[],
            award=[],
            balances=None,
        )
    account = await ledger.lock_account(uow, member.id, now)
    if sale.points_to_redeem:
        await ledger.redeem(
            uow,
            account,
            sale.points_to_redeem,
            reason=f"Paid at the register (receipt {sale.receipt_id})",
            occurred_at=sale.sold_at,
            now=now,
            purchase_id=purchase.id,
        )
        events.append(
            _transaction_event(purchase, InteractionKind.POINTS_REDEEMED, {"points": sale.points_to_redeem})
        )
    repaid = 0
    if award.points:
        repaid = await ledger.earn(
            uow,
            account,
            award.points,
            kind=EntryKind.EARN,
            reason=f"Purchase (receipt {sale.receipt_id})",
            earned_at=sale.sold_at,
            available_at=program.available_at(sale.sold_at),
            expires_at=program.expires_at(sale.sold_at),
            now=now,
            miles=award.miles,
            purchase_id=purchase.id,
            details={"applied": msgspec.to_builtins(award.applied)},
        )
        events.append(
            _transaction_event(
                purchase,
                InteractionKind.POINTS_EARNED,
                {
                    "points": award.points,
                    "miles": award.miles,
                    "rules": [f"{rule.rule}: {rule.detail}"[:120] for rule in award.applied][:40],
                },
            )
        )
    await record_many(uow, events, now)
    reached = await add_miles(uow, program, account, award.miles, sale.sold_at, now)
    return PurchaseResult(
        purchase_id=purchase.id,
        receipt_id=purchase.receipt_id,
        member=await _register_view(uow, program, member, now),
        points_redeemed=sale.points_to_redeem,
        points_earned=award.points,
        points_repaid=repaid,
        miles_earned=award.miles,
        stages_reached=reached,
        award=award.applied,
        balances=(await ledger.balances(uow, member.id, now)).view(),
    )


def _purchase_event(purchase: Purchase, lines: list[SaleLine]) -> EventDraft:
    return EventDraft(
        member_id=purchase.member_id,
        kind=InteractionKind.PURCHASED,
        occurred_at=purchase.sold_at,
        channel=Channel.POS,
        store_id=purchase.store_id,
        subject_type=SubjectType.TRANSACTION,
        subject_ref=str(purchase.id),
        properties={
            "amount_minor": purchase.total_minor,
            "receipt_id": purchase.receipt_id,
            "item_count": sum(line.quantity for line in lines),
            "categories": sorted({line.category for line in lines})[:50],
        },
    )


def _transaction_event(
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


def _refund_amount(purchase: Purchase, request: RefundRequest) -> tuple[int, list[dict[str, int]]]:
    """The amount a refund returns, and the per-line quantities it returns (for later line refunds)."""
    if (request.lines is None) == (request.amount_minor is None):
        raise RefundExceedsSale("give either lines or amount_minor")
    if request.amount_minor is not None:
        return request.amount_minor, []
    sold = {line["line_no"]: line for line in purchase.lines}
    amount = 0
    for refund_line in request.lines or []:
        line = sold.get(refund_line.line_no)
        if line is None:
            raise UnknownLine(line_no=refund_line.line_no)
        already = line.get("refunded_quantity", 0)
        if already + refund_line.quantity > line["quantity"]:
            raise RefundExceedsSale(f"line {refund_line.line_no}: more returned than sold")
        line_amount = SaleLine(**{k: v for k, v in line.items() if k != "refunded_quantity"}).amount_minor
        # Cumulative share of the line, so returning a line item by item adds up to exactly its amount.
        amount += proportional_share(
            line_amount,
            already + refund_line.quantity,
            line["quantity"],
            proportional_share(line_amount, already, line["quantity"], 0),
        )
    return amount, [{"line_no": line.line_no, "quantity": line.quantity} for line in request.lines or []]


async def record_refund(
    uow: UnitOfWork, program: Program, register: Register, request: RefundRequest
) -> RefundResult:
    now = register.now
    purchase = (
        await uow.session.execute(
            select(Purchase)
            .where(Purchase.store_id == register.store_id, Purchase.receipt_id == request.original_receipt_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if purchase is None:
        raise PurchaseNotFound(receipt_id=request.original_receipt_id)
    amount, returned_lines = _refund_amount(purchase, request)
    refunded_total = purchase.refunded_minor + amount
    if refunded_total > purchase.total_minor:
        raise RefundExceedsSale(refundable_minor=purchase.total_minor - purchase.refunded_minor)
    reverse = proportional_share(
        purchase.points_earned, refunded_total, purchase.total_minor, purchase.points_reversed
    )
    miles = proportional_share(
        purchase.miles_earned, refunded_total, purchase.total_minor, purchase.miles_reversed
    )
    give = proportional_share(
        purchase.points_redeemed, refunded_total, purchase.total_minor, purchase.points_returned
    )
    refund = Refund(
        purchase_id=purchase.id,
        store_id=register.store_id,
        terminal_id=register.terminal_id,
        refund_receipt_id=request.refund_receipt_id,
        refunded_at=request.refunded_at,
        posted_at=now,
        amount_minor=amount,
        lines=returned_lines,
        points_reversed=reverse,
        miles_reversed=miles,
        points_returned=give,
        points_owed=0,
    )
    await uow.add_unique(refund, RefundAlreadyPosted(refund_receipt_id=request.refund_receipt_id))
    _mark_returned_lines(purchase, returned_lines)
    purchase.refunded_minor = refunded_total
    purchase.points_reversed += reverse
    purchase.miles_reversed += miles
    purchase.points_returned += give
    refunded: Properties = {"amount_minor": amount, "points_reversed": reverse, "points_returned": give}
    events = [_transaction_event(purchase, InteractionKind.REFUNDED, refunded, request.refunded_at)]
    balances = None
    if purchase.member_id is not None:
        account = await ledger.lock_account(uow, purchase.member_id, now)
        reason = f"Return of receipt {purchase.receipt_id} (refund {request.refund_receipt_id})"
        if reverse:
            refund.points_owed = await ledger.take_back(
                uow,
                account,
                reverse,
                reason=reason,
                occurred_at=request.refunded_at,
                now=now,
                purchase_id=purchase.id,
                refund_id=refund.id,
                miles=miles,
            )
        if give:
            await ledger.give_back(
                uow,
                account,
                give,
                original=await _redeemed_lots(uow, purchase.id),
                reason=reason,
                occurred_at=request.refunded_at,
                now=now,
                purchase_id=purchase.id,
                refund_id=refund.id,
            )
        if refund.points_owed:
            owed: Properties = {"points_owed": refund.points_owed}
            events.append(
                _transaction_event(purchase, InteractionKind.POINTS_ADJUSTED, owed, request.refunded_at)
            )
        await remove_miles(uow, program, purchase.member_id, miles, purchase.sold_at)
        balances = (await ledger.balances(uow, purchase.member_id, now)).view()
    await record_many(uow, events, now)
    return RefundResult(
        refund_id=refund.id,
        purchase_id=purchase.id,
        amount_minor=amount,
        refunded_total_minor=refunded_total,
        points_reversed=reverse,
        points_owed=refund.points_owed,
        points_returned=give,
        miles_reversed=miles,
        balances=balances,
    )


def _mark_returned_lines(purchase: Purchase, returned: list[dict[str, int]]) -> None:
    if not returned:
        return
    by_line = {line["line_no"]: dict(line) for line in purchase.lines}
    for item in returned:
        by_line[item["line_no"]]["refunded_quantity"] = (
            by_line[item["line_no"]].get("refunded_quantity", 0) + item["quantity"]
        )
    purchase.lines = list(by_line.values())  # a new list, so the JSONB column is written


async def _redeemed_lots(uow: UnitOfWork, purchase_id: uuid.UUID) -> list[LotTake]:
    details = (
        await uow.session.execute(
            select(PointEntry.details).where(
                PointEntry.purchase_id == purchase_id, PointEntry.kind == EntryKind.REDEEM
            )
        )
    ).scalar_one_or_none()
    return msgspec.convert((details or {}).get("lots", []), list[LotTake])
