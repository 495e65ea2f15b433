"""Recording a sale at the register: redeem and earn points, miles and stages, on the timeline.

Everything runs in the request's unit of work, so the sale, its ledger entries, its miles, its timeline
events and the POS's idempotency record commit together or not at all. A member's sale takes four
statements of its own: the code's use with the account lock (points.register), the sale's row with
what the ledger needs read under that lock, the offers (offers.redemption), and everything it changes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from sqlalchemy import text

from domain.ids import new_id
from domain.interactions import InteractionKind
from domain.keys import KeyRing
from infra.db import UnitOfWork
from offers.errors import OfferNotApplicable
from offers.redemption import OfferUse, SaleForOffers, offer_points_by_line, use_offers_on_sale
from offers.rules.effects import PaidLine, Rates
from points import holdings, ledger
from points.changes import Account, Changes, Sale, execute_unique, rows_sql
from points.errors import ReceiptAlreadyPosted
from points.miles import MilesPeriod, move_miles, periods_of, periods_sql, sale_periods, stage_from
from points.program import Program
from points.register import Register, sale_event, scan_for_sale
from points.rules.earning import AppliedRule, Award, SaleLine, award_for_basket
from points.rules.refunds import StoredLine
from points.rules.sales import check_sale
from points.rules.stages import period_start
from points.schemas import BalancesView, OfferUsed, PurchaseRequest, PurchaseResult
from points.tables import EntryKind
from timeline.rules import EventDraft

# The sale's row, then (under the account lock taken before) the member's balances, the lots a
# redemption of :redeem points takes from (locked), and the miles periods the sale changes or reads.
_POST_AND_READ = text(
    holdings.balances_sql(
        first=f"new_sale AS (INSERT INTO purchases SELECT * FROM {rows_sql('purchases', 'sale')}),",  # noqa: S608 - constant SQL; values are bound
        also=f""",
    {holdings.covering_lots_sql(":member_id", ":redeem", ":now")} AS spendable,
    {periods_sql(":member_id", "CAST(:starts AS timestamptz[])")} AS periods""",
    )
)


async def record_purchase(
    uow: UnitOfWork, program: Program, code_keys: KeyRing, register: Register, sale: PurchaseRequest
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
    award = award_for_basket(program.earning, lines, register.store_id, sale.sold_at, sale.points_to_redeem)
    if sale.member_code is None:
        return await _anonymous_sale(uow, register, sale, lines, award)
    holder, account = await scan_for_sale(
        uow, program, code_keys, register, sale.member_code, redeeming=sale.points_to_redeem > 0
    )
    purchase = _sale_row(register, sale, lines, award, holder.member_id)
    changes = Changes(now)
    before, periods = await _post_and_read(uow, changes, program, purchase, account, sale.points_to_redeem)
    events = [_purchased(purchase, lines)]
    if sale.points_to_redeem:
        ledger.redeem(
            changes,
            account,
            sale.points_to_redeem,
            reason=f"Paid at the register (receipt {sale.receipt_id})",
            occurred_at=sale.sold_at,
            purchase_id=purchase.id,
        )
        events.append(
            sale_event(purchase, InteractionKind.POINTS_REDEEMED, {"points": sale.points_to_redeem})
        )
    uses = await use_offers_on_sale(
        uow, _sale_for_offers(purchase, holder.member_id, lines, award, sale), _rates(program), now
    )
    points = award.points + sum(use.points for use in uses)
    if uses:
        award = _with_offers(award, uses)
        purchase.award = msgspec.to_builtins(award)
        purchase.points_earned = points
        purchase.lines = msgspec.to_builtins(_stored_lines(lines, award, with_member=True))
        changes.purchases.append(purchase)
    repaid = 0
    if points:
        repaid, _ = ledger.add_earning(
            changes,
            account,
            points,
            kind=EntryKind.EARN,
            reason=f"Purchase (receipt {sale.receipt_id})",
            earned_at=sale.sold_at,
            available_at=program.available_at(sale.sold_at),
            expires_at=program.expires_at(sale.sold_at),
            miles=award.miles,
            purchase_id=purchase.id,
            details={"applied": msgspec.to_builtins(award.applied)},
        )
        events.append(_earned(purchase, points, award))
    changes.events.extend(events)
    period = periods[period_start(sale.sold_at, program.stages)]
    reached = await move_miles(uow, changes, program, account, period, award.miles)
    await changes.write(uow)
    available, pending = (a + b for a, b in zip(before, changes.balance_change(), strict=True))
    return PurchaseResult(
        purchase_id=purchase.id,
        receipt_id=purchase.receipt_id,
        member=holder.at_register(stage_from(periods, program, now)),
        points_redeemed=sale.points_to_redeem,
        points_earned=points,
        points_repaid=repaid,
        miles_earned=award.miles,
        stages_reached=reached,
        award=award.applied,
        balances=BalancesView(available, pending, account.owed, account.lifetime_earned),
        offers_used=[OfferUsed(use.offer_id, use.title, use.points, use.amount_off_minor) for use in uses],
    )


async def _post_and_read(
    uow: UnitOfWork, changes: Changes, program: Program, purchase: Sale, account: Account, redeem: int
) -> tuple[tuple[int, int], dict[datetime, MilesPeriod]]:
    """Insert the sale; read the member's (available, pending) points, the lots the redemption takes
    from (into `changes`) and the miles periods. The account is locked, so all of it stays as read."""
    starts = sale_periods(program, purchase.sold_at, changes.now)
    params = {
        "sale": msgspec.json.encode([purchase]).decode(),
        "member_id": account.member_id,
        "now": changes.now,
        "redeem": redeem,
        "starts": starts,
    }
    posted = await execute_unique(
        uow, _POST_AND_READ, params, ReceiptAlreadyPosted(receipt_id=purchase.receipt_id)
    )
    row = posted.one()
    changes.read(holdings.lots_of(row.spendable))
    return (int(row.available), int(row.pending)), periods_of(account.member_id, row.periods, starts)


async def _anonymous_sale(
    uow: UnitOfWork, register: Register, sale: PurchaseRequest, lines: list[SaleLine], award: Award
) -> PurchaseResult:
    if sale.offer_ids:
        raise OfferNotApplicable(
            "a coupon needs the member's code", offer_ids=[str(i) for i in sale.offer_ids]
        )
    purchase = _sale_row(register, sale, lines, award, None)
    changes = Changes(register.now)
    changes.new_purchases.append(purchase)
    changes.events.append(_purchased(purchase, lines))
    await changes.write(uow, conflict=ReceiptAlreadyPosted(receipt_id=sale.receipt_id))
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


def _sale_row(
    register: Register,
    sale: PurchaseRequest,
    lines: list[SaleLine],
    award: Award,
    member_id: uuid.UUID | None,
) -> Sale:
    return Sale(
        id=new_id(),
        store_id=register.store_id,
        terminal_id=register.terminal_id,
        receipt_id=sale.receipt_id,
        member_id=member_id,
        sold_at=sale.sold_at,
        posted_at=register.now,
        currency=sale.currency,
        total_minor=sale.total_minor,
        lines=msgspec.to_builtins(_stored_lines(lines, award, with_member=member_id is not None)),
        points_redeemed=sale.points_to_redeem,
        points_earned=award.points if member_id else 0,
        miles_earned=award.miles if member_id else 0,
        award=msgspec.to_builtins(award),
    )


def _purchased(purchase: Sale, lines: list[SaleLine]) -> EventDraft:
    return sale_event(
        purchase,
        InteractionKind.PURCHASED,
        {
            "amount_minor": purchase.total_minor,
            "receipt_id": purchase.receipt_id,
            "item_count": sum(line.quantity for line in lines),
            "categories": sorted({line.category for line in lines})[:50],
        },
    )


def _earned(purchase: Sale, points: int, award: Award) -> EventDraft:
    return sale_event(
        purchase,
        InteractionKind.POINTS_EARNED,
        {
            "points": points,
            "miles": award.miles,
            "rules": [f"{rule.rule}: {rule.detail}"[:120] for rule in award.applied][:40],
        },
    )


def _rates(program: Program) -> Rates:
    return Rates(program.earning.points_per_unit, program.earning.unit_minor)


def _sale_for_offers(
    purchase: Sale, member_id: uuid.UUID, lines: list[SaleLine], award: Award, sale: PurchaseRequest
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
