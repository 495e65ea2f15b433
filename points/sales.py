"""Recording a sale at the register: redeem and earn points, miles and stages, on the timeline.

Everything runs in the request's unit of work, so the sale, its ledger entries, its miles, its timeline
events and the POS's idempotency record commit together or not at all.
"""

from __future__ import annotations

import uuid

import msgspec

from domain.interactions import InteractionKind
from infra.db import UnitOfWork
from offers.errors import OfferNotApplicable
from offers.redemption import OfferUse, SaleForOffers, offer_points_by_line, use_offers_on_sale
from offers.rules.effects import PaidLine, Rates
from points import ledger
from points.errors import ReceiptAlreadyPosted
from points.miles import change_miles
from points.program import Program
from points.register import Register, member_for_code, register_view, sale_event, use_code
from points.rules.earning import AppliedRule, Award, SaleLine, award_for_basket
from points.rules.refunds import StoredLine
from points.rules.sales import check_sale
from points.schemas import OfferUsed, PurchaseRequest, PurchaseResult
from points.tables import EntryKind, Purchase
from timeline.recording import record_many


async def record_purchase(
    uow: UnitOfWork, program: Program, code_key: str, register: Register, sale: PurchaseRequest
) -> PurchaseResult:
    now = register.now
    lines = [SaleLine(**msgspec.structs.asdict(line)) for line in sale.lines]
    check_sale(
        program,
        currency=sale.currency,
        sold_at=sale.sold_at,
        total_minor=sale.total_minor,
        lines=lines,
        points_to_redeem=sale.points_to_redeem,
        with_member=sale.member_code is not None,
        now=now,
    )
    check = None
    if sale.member_code is not None:
        check = await member_for_code(uow, program, code_key, sale.member_code, now)
        await use_code(uow, check, register, redeeming=sale.points_to_redeem > 0)
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
        lines=msgspec.to_builtins(_stored_lines(lines, award, with_member=member is not None)),
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
    events = [
        sale_event(
            purchase,
            InteractionKind.PURCHASED,
            {
                "amount_minor": purchase.total_minor,
                "receipt_id": purchase.receipt_id,
                "item_count": sum(line.quantity for line in lines),
                "categories": sorted({line.category for line in lines})[:50],
            },
        )
    ]
    if member is None:
        if sale.offer_ids:
            raise OfferNotApplicable(
                "a coupon needs the member's code", offer_ids=[str(i) for i in sale.offer_ids]
            )
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
            sale_event(purchase, InteractionKind.POINTS_REDEEMED, {"points": sale.points_to_redeem})
        )
    uses = await use_offers_on_sale(
        uow, _sale_for_offers(purchase, member.id, lines, award, sale), _rates(program), now
    )
    points = award.points + sum(use.points for use in uses)
    if uses:
        award = _with_offers(award, uses)
        purchase.award = msgspec.to_builtins(award)
        purchase.points_earned = points
        purchase.lines = msgspec.to_builtins(_stored_lines(lines, award, with_member=True))
    repaid = 0
    if points:
        repaid, _ = await ledger.earn(
            uow,
            account,
            points,
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
            sale_event(
                purchase,
                InteractionKind.POINTS_EARNED,
                {
                    "points": points,
                    "miles": award.miles,
                    "rules": [f"{rule.rule}: {rule.detail}"[:120] for rule in award.applied][:40],
                },
            )
        )
    await record_many(uow, events, now)
    reached = await change_miles(uow, program, account, award.miles, sale.sold_at, now)
    return PurchaseResult(
        purchase_id=purchase.id,
        receipt_id=purchase.receipt_id,
        member=await register_view(uow, program, member, now),
        points_redeemed=sale.points_to_redeem,
        points_earned=points,
        points_repaid=repaid,
        miles_earned=award.miles,
        stages_reached=reached,
        award=award.applied,
        balances=(await ledger.balances(uow, member.id, now)).view(),
        offers_used=[OfferUsed(use.offer_id, use.title, use.points, use.amount_off_minor) for use in uses],
    )


def _rates(program: Program) -> Rates:
    return Rates(program.earning.points_per_unit, program.earning.unit_minor)


def _sale_for_offers(
    purchase: Purchase, member_id: uuid.UUID, lines: list[SaleLine], award: Award, sale: PurchaseRequest
) -> SaleForOffers:
    earning = {line_award.line_no: line_award.earning_minor for line_award in award.lines}
    return SaleForOffers(
        member_id=member_id,
        store_id=purchase.store_id,
        purchase_id=purchase.id,
        sold_at=purchase.sold_at,
        total_minor=purchase.total_minor,
        lines=[PaidLine(line.line_no, line.sku, line.category, earning[line.line_no]) for line in lines],
        coupon_ids=frozenset(sale.offer_ids),
    )


def _with_offers(award: Award, uses: list[OfferUse]) -> Award:
    """The award with the offers' points added to the lines that earned them, so a return of a line
    takes back its share of them too."""
    extra = offer_points_by_line(uses)
    lines = [
        msgspec.structs.replace(line, points=line.points + extra.get(line.line_no, 0)) for line in award.lines
    ]
    applied = award.applied + [
        AppliedRule(
            "offer",
            f"{use.title}: " + (f"+{use.points} points" if use.points else f"{use.amount_off_minor} off"),
        )
        for use in uses
    ]
    return msgspec.structs.replace(
        award, points=award.points + sum(use.points for use in uses), lines=lines, applied=applied
    )


def _stored_lines(lines: list[SaleLine], award: Award, *, with_member: bool) -> list[StoredLine]:
    """The sale's lines as kept: what each earned (nothing without a member) and what points paid."""
    by_line = {line_award.line_no: line_award for line_award in award.lines}
    return [
        StoredLine(
            line_no=line.line_no,
            sku=line.sku,
            category=line.category,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
            discount_minor=line.discount_minor,
            points_earned=by_line[line.line_no].points if with_member else 0,
            miles_earned=by_line[line.line_no].miles if with_member else 0,
            points_paid=by_line[line.line_no].points_paid,
            paid_with_points_minor=by_line[line.line_no].paid_with_points_minor,
        )
        for line in sorted(lines, key=lambda line: line.line_no)
    ]
