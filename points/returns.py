"""Recording a return at the register: what the returned lines earned and were paid with goes back.

Runs in the request's unit of work with the sale row locked, so concurrent returns of one sale apply
one after another and never return more than was sold.
"""

from __future__ import annotations

import uuid

import msgspec
from sqlalchemy import select

from domain.interactions import InteractionKind
from infra.db import UnitOfWork
from points import ledger
from points.errors import PurchaseNotFound, RefundAlreadyPosted, RefundLinesOrAmount
from points.miles import change_miles
from points.program import Program
from points.register import Register, sale_event
from points.rules.ledger import LotTake
from points.rules.refunds import RefundPlan, StoredLine, refund_by_amount, refund_by_lines
from points.rules.sales import check_refund_time
from points.schemas import RefundRequest, RefundResult
from points.tables import EntryKind, PointEntry, PointLot, Purchase, Refund
from timeline.recording import record_many
from timeline.rules import Properties


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
    check_refund_time(program, request.refunded_at, purchase.sold_at, now)
    plan = _plan(purchase, request)
    refund = Refund(
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
        points_owed=0,
    )
    await uow.add_unique(refund, RefundAlreadyPosted(refund_receipt_id=request.refund_receipt_id))
    purchase.lines = msgspec.to_builtins(plan.lines)
    purchase.refunded_minor += plan.amount_minor
    purchase.points_reversed += plan.points_reversed
    purchase.miles_reversed += plan.miles_reversed
    purchase.points_returned += plan.points_returned
    refunded: Properties = {
        "amount_minor": plan.amount_minor,
        "points_reversed": plan.points_reversed,
        "points_returned": plan.points_returned,
    }
    events = [sale_event(purchase, InteractionKind.REFUNDED, refunded, request.refunded_at)]
    balances = None
    if purchase.member_id is not None:
        account = await ledger.lock_account(uow, purchase.member_id, now)
        reason = f"Return of receipt {purchase.receipt_id} (refund {request.refund_receipt_id})"
        # Redeemed points come back before earned ones are taken back, so the reversal can draw on
        # them: a member who spent the earned points is not told of a debt this same return repays.
        if plan.points_returned:
            await ledger.give_back(
                uow,
                account,
                plan.points_returned,
                original=await _redeemed_lots(uow, purchase.id),
                reason=reason,
                occurred_at=request.refunded_at,
                now=now,
                purchase_id=purchase.id,
                refund_id=refund.id,
            )
        if plan.points_reversed:
            refund.points_owed = await ledger.take_back(
                uow,
                account,
                plan.points_reversed,
                own_lots=await _earned_lots(uow, purchase.id),
                reason=reason,
                occurred_at=request.refunded_at,
                now=now,
                purchase_id=purchase.id,
                refund_id=refund.id,
                miles=plan.miles_reversed,
            )
        if refund.points_owed:
            owed: Properties = {"points_owed": refund.points_owed}
            events.append(sale_event(purchase, InteractionKind.POINTS_ADJUSTED, owed, request.refunded_at))
        await change_miles(uow, program, account, -plan.miles_reversed, purchase.sold_at, now)
        balances = (await ledger.balances(uow, purchase.member_id, now)).view()
    await record_many(uow, events, now)
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


def _plan(purchase: Purchase, request: RefundRequest) -> RefundPlan:
    lines = msgspec.convert(purchase.lines, list[StoredLine])
    if request.lines is not None and request.amount_minor is None:
        return refund_by_lines(lines, [(line.line_no, line.quantity) for line in request.lines])
    if request.amount_minor is not None and request.lines is None:
        return refund_by_amount(lines, request.amount_minor)
    raise RefundLinesOrAmount()


async def _earned_lots(uow: UnitOfWork, purchase_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        (
            await uow.session.execute(
                select(PointLot.id).where(
                    PointLot.purchase_id == purchase_id, PointLot.source == EntryKind.EARN
                )
            )
        ).scalars()
    )


async def _redeemed_lots(uow: UnitOfWork, purchase_id: uuid.UUID) -> list[LotTake]:
    details = (
        await uow.session.execute(
            select(PointEntry.details).where(
                PointEntry.purchase_id == purchase_id, PointEntry.kind == EntryKind.REDEEM
            )
        )
    ).scalar_one_or_none()
    return msgspec.convert((details or {}).get("lots", []), list[LotTake])
