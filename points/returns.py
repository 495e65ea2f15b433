"""Recording a return at the register: what the returned lines earned and were paid with goes back.

Runs in the request's unit of work with the sale row locked, so concurrent returns of one sale apply
one after another and never return more than was sold. A member's return takes three statements of
its own: the sale and the member's account locked, the member's lots and miles read under those locks,
and everything it changes.
"""

from __future__ import annotations

import msgspec
from sqlalchemy import text

from domain.ids import new_id
from domain.interactions import InteractionKind
from infra.db import UnitOfWork
from points import holdings, ledger
from points.changes import Account, Changes, Return, Sale
from points.errors import PurchaseNotFound, RefundAlreadyPosted, RefundLinesOrAmount
from points.miles import move_miles, periods_of, periods_sql, sale_periods
from points.program import Program
from points.register import Register, sale_event
from points.rules.ledger import LotTake
from points.rules.refunds import RefundPlan, StoredLine, refund_by_amount, refund_by_lines
from points.rules.sales import check_refund_time
from points.rules.stages import period_start
from points.schemas import BalancesView, RefundRequest, RefundResult
from points.tables import EntryKind
from timeline.rules import Properties

# The sale, locked, and its member's account (when it has a member), locked after it.
_LOCK_SALE = text(
    f"""
WITH sale AS (
    SELECT * FROM purchases WHERE store_id = :store_id AND receipt_id = :receipt_id FOR UPDATE
),
locked_account AS ({ledger.lock_account_sql("sale WHERE sale.member_id IS NOT NULL", "sale.member_id")})
SELECT row_to_json(sale) AS sale, locked_account.*
FROM sale LEFT JOIN locked_account ON true
"""  # noqa: S608 - constant SQL; values are bound
)
# Under those locks: the member's balances, every lot with points left (locked: a return may take from
# any of them), what the sale's redemption took, and the miles periods the return changes or reads.
_READ_MEMBER = text(
    holdings.balances_sql(
        also=f""",
    {holdings.lots_with_points_sql(":member_id")} AS lots,
    (SELECT details FROM point_entries WHERE purchase_id = :purchase_id AND kind = 'redeem') AS redeemed,
    {periods_sql(":member_id", "CAST(:starts AS timestamptz[])")} AS periods"""  # noqa: S608 - constant SQL; values are bound
    )
)


async def record_refund(
    uow: UnitOfWork, program: Program, register: Register, request: RefundRequest
) -> RefundResult:
    now = register.now
    found = (
        await uow.session.execute(
            _LOCK_SALE,
            {"store_id": register.store_id, "receipt_id": request.original_receipt_id, "now": now},
        )
    ).one_or_none()
    if found is None:
        raise PurchaseNotFound(receipt_id=request.original_receipt_id)
    purchase = msgspec.convert(found.sale, Sale)
    check_refund_time(program, request.refunded_at, purchase.sold_at, now)
    plan = _plan(purchase, request)
    refund = Return(
        id=new_id(),
        purchase_id=purchase.id,
        store_id=register.store_id,
        terminal_id=register.terminal_id,
        refund_receipt_id=request.refund_receipt_id,
        refunded_at=request.refunded_at,
        posted_at=now,
        amount_minor=plan.amount_minor,
        lines=msgspec.to_builtins(plan.changes),
        points_reversed=plan.points_reversed,
        miles_reversed=plan.miles_reversed,
        points_returned=plan.points_returned,
    )
    purchase.lines = msgspec.to_builtins(plan.lines)
    purchase.refunded_minor += plan.amount_minor
    purchase.points_reversed += plan.points_reversed
    purchase.miles_reversed += plan.miles_reversed
    purchase.points_returned += plan.points_returned
    changes = Changes(now)
    changes.purchases.append(purchase)
    changes.refunds.append(refund)
    refunded: Properties = {
        "amount_minor": plan.amount_minor,
        "points_reversed": plan.points_reversed,
        "points_returned": plan.points_returned,
    }
    changes.events.append(sale_event(purchase, InteractionKind.REFUNDED, refunded, request.refunded_at))
    balances = None
    if purchase.member_id is not None:
        account = ledger.account_of(found)
        balances = await _return_points(uow, changes, program, purchase, account, plan, refund, request)
    await changes.write(uow, conflict=RefundAlreadyPosted(refund_receipt_id=request.refund_receipt_id))
    return RefundResult(
        refund_id=refund.id,
        purchase_id=purchase.id,
        amount_minor=plan.amount_minor,
        refunded_total_minor=purchase.refunded_minor,
        points_reversed=plan.points_reversed,
        points_owed=refund.points_owed,
        points_returned=plan.points_returned,
        miles_reversed=plan.miles_reversed,
        money_to_return_minor=plan.money_returned_minor,
        balances=balances,
    )


async def _return_points(
    uow: UnitOfWork,
    changes: Changes,
    program: Program,
    purchase: Sale,
    account: Account,
    plan: RefundPlan,
    refund: Return,
    request: RefundRequest,
) -> BalancesView:
    """Give back what the returned lines were paid with, take back what they earned (and the miles);
    returns the member's balances afterwards."""
    now = changes.now
    starts = sale_periods(program, purchase.sold_at, now)
    row = (
        await uow.session.execute(
            _READ_MEMBER,
            {"member_id": account.member_id, "now": now, "purchase_id": purchase.id, "starts": starts},
        )
    ).one()
    lots = changes.read(holdings.lots_of(row.lots))
    reason = f"Return of receipt {purchase.receipt_id} (refund {request.refund_receipt_id})"
    # Redeemed points come back before earned ones are taken back, so the reversal can draw on
    # them: a member who spent the earned points is not told of a debt this same return repays.
    if plan.points_returned:
        original = msgspec.convert((row.redeemed or {}).get("lots", []), list[LotTake])
        ledger.give_back(
            changes,
            account,
            plan.points_returned,
            original=original,
            reason=reason,
            occurred_at=request.refunded_at,
            purchase_id=purchase.id,
            refund_id=refund.id,
        )
    if plan.points_reversed:
        own = [lot.id for lot in lots if lot.purchase_id == purchase.id and lot.source is EntryKind.EARN]
        refund.points_owed = owed = ledger.take_back(
            changes,
            account,
            plan.points_reversed,
            own_lots=own,
            reason=reason,
            occurred_at=request.refunded_at,
            miles=plan.miles_reversed,
            purchase_id=purchase.id,
            refund_id=refund.id,
        )
        if owed:
            adjusted: Properties = {"points_owed": owed}
            changes.events.append(
                sale_event(purchase, InteractionKind.POINTS_ADJUSTED, adjusted, request.refunded_at)
            )
    periods = periods_of(account.member_id, row.periods, starts)
    period = periods[period_start(purchase.sold_at, program.stages)]
    await move_miles(uow, changes, program, account, period, -plan.miles_reversed)
    available, pending = changes.balance_change()
    return BalancesView(
        int(row.available) + available, int(row.pending) + pending, account.owed, account.lifetime_earned
    )


def _plan(purchase: Sale, request: RefundRequest) -> RefundPlan:
    lines = msgspec.convert(purchase.lines, list[StoredLine])
    if request.lines is not None and request.amount_minor is None:
        return refund_by_lines(lines, [(line.line_no, line.quantity) for line in request.lines])
    if request.amount_minor is not None and request.lines is None:
        return refund_by_amount(lines, request.amount_minor)
    raise RefundLinesOrAmount()
