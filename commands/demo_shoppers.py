"""The demo's registers and phones: each planned action carried out through the product's own use cases.

A sale goes through `points.sales.record_purchase` at its store's terminal, a return through
`points.returns.record_refund`, a check-in through `geofence.check_ins.check_in`, the app's offer list
and clips through `offers.selection` and `offers.activation`; what the app reports (opens, content and
offer views, pushes received and opened) is recorded by `timeline.recording.record_many` as the events
endpoint records it. Each use case runs at the simulated moment it happened.

The register scans the member's printed card number (the program allows it for the demo): a rotating
code would need the code signing key, which the seeder is not given, and the sale is recorded the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
import numpy as np

from commands.demo_people import Person
from commands.demo_plan import Action, AppSession, Joined, PushReply, Return, Visit
from domain.interactions import Channel, InteractionKind, SubjectType
from domain.keys import FIRST_KEY_ID, KeyRing, SigningKey
from geofence.check_ins import check_in
from geofence.errors import CheckInRejected
from geofence.rules import CheckInPolicy, Trigger
from geofence.schemas import CheckInRequest
from infra.db import Database, UnitOfWork
from offers.activation import activate_offer
from offers.errors import OfferNotAvailable
from offers.program import OfferProgram
from offers.schemas import OfferCard
from offers.selection import OpenOffers, offers_for_member
from offers.versions import ServingPolicy
from points import ledger
from points.program import Program
from points.register import Register
from points.returns import record_refund
from points.sales import record_purchase
from points.schemas import PurchaseRequest, RefundLineIn, RefundRequest, SaleLineIn
from timeline.recording import record_many
from timeline.rules import EventDraft

POSTED_AFTER = timedelta(seconds=5)  # the register posts the sale this long after it was rung up
CHECKED_IN_BEFORE = timedelta(minutes=8)  # the phone checks in as the member walks in
FIX_AGE = timedelta(seconds=2)
# The year is replayed a week at a time: the app's events of the week are recorded in one batch, this
# long after the week's last one (their own times are kept; only `recorded_at` says when they came).
REPORTED_AFTER = timedelta(seconds=30)
MIN_POINTS_TO_REDEEM = 300
METRES_PER_DEGREE = 111_320


# Demo sales present the shopper's card number, which no code key verifies.
_NO_CODE_KEYS = KeyRing(SigningKey(key_id=FIRST_KEY_ID, secret=""))


class DemoStore(msgspec.Struct, frozen=True):
    store_id: uuid.UUID
    terminal_id: uuid.UUID
    latitude: float
    longitude: float
    radius_m: int


@dataclass
class Shopper:
    person: Person
    card_number: str
    available: int = 0  # points, as the last sale or return left them (expiry may have taken some)
    clips: dict[uuid.UUID, datetime] = field(default_factory=dict)  # offer -> end of its validity


@dataclass(frozen=True)
class Programs:
    """The loyalty, check-in and offer programs the demo runs: the defaults, as `serve` has them, but for
    the printed card number being accepted at the register (see the module docstring)."""

    points: Program
    check_ins: CheckInPolicy
    offers: OfferProgram


class Lane:
    """One of the demo's concurrent writers: a share of the members, in transactions of its own.

    Members are split between lanes, so two lanes never lock the same member's rows. The one row they
    could both lock is an offer's budget counter, spent by a sale that uses a clipped offer: a lane
    takes `spend_lock` before such a sale and keeps it until its transaction ends, so two lanes never
    hold offer rows the other waits for.
    """

    def __init__(
        self,
        shoppers: dict[int, Shopper],
        stores: dict[str, DemoStore],
        offer_ends: dict[uuid.UUID, datetime],
        programs: Programs,
        rng: np.random.Generator,
        spend_lock: asyncio.Lock,
    ) -> None:
        self.shoppers, self.stores, self.offer_ends, self.programs = shoppers, stores, offer_ends, programs
        self.rng, self.spend_lock = rng, spend_lock
        self.serving = ServingPolicy(programs.offers.selection)
        self.catalogue = OpenOffers()
        self.recorded: dict[str, int] = {}

    async def run(self, db: Database, actions: Sequence[Action]) -> None:
        """Carry out `actions` (in time order) in one transaction; the app's events are sent last."""
        if not actions:
            return
        holding = False
        try:
            async with db.unit_of_work() as uow:
                app_events: list[EventDraft] = []
                for action in actions:
                    if not holding and self._may_spend_offer(action):
                        await self.spend_lock.acquire()
                        holding = True
                    app_events += await self._carry_out(uow, action)
                if app_events:
                    latest = max(event.occurred_at for event in app_events)
                    await record_many(uow, app_events, latest + REPORTED_AFTER)
                    self._count("app_events", len(app_events))
        finally:
            if holding:
                self.spend_lock.release()

    def _may_spend_offer(self, action: Action) -> bool:
        if not isinstance(action, Visit) or not action.basket:
            return False
        return any(ends_at > action.at for ends_at in self.shoppers[action.person].clips.values())

    def _count(self, what: str, n: int = 1) -> None:
        self.recorded[what] = self.recorded.get(what, 0) + n

    async def _carry_out(self, uow: UnitOfWork, action: Action) -> list[EventDraft]:
        """Record `action`; returns what the member's app reports about it (sent with the lane's batch)."""
        shopper = self.shoppers[action.person]
        member_id = shopper.person.member_id
        if isinstance(action, Joined):
            return [_app_event(member_id, InteractionKind.MEMBER_JOINED, action.at)]
        if isinstance(action, AppSession):
            return await self._session(uow, shopper, action)
        if isinstance(action, Visit):
            if action.check_in:
                await self._check_in(uow, shopper, action)
            if action.basket:
                await self._sale(uow, shopper, action)
            return []
        if isinstance(action, Return):
            await self._return(uow, shopper, action)
            return []
        return _push_events(member_id, action)

    async def _sale(self, uow: UnitOfWork, shopper: Shopper, visit: Visit) -> None:
        store = self.stores[visit.store]
        now = visit.at + POSTED_AFTER
        lines = [
            SaleLineIn(number, line.sku, line.category, line.quantity, line.unit_price_minor)
            for number, line in enumerate(visit.basket, start=1)
        ]
        total = sum(line.quantity * line.unit_price_minor for line in lines)
        redeem = 0
        habits = shopper.person.habits
        if visit.redeem_roll < habits.redeem_share and shopper.available >= MIN_POINTS_TO_REDEEM:
            held = await ledger.balances(uow, shopper.person.member_id, now)
            redeem = min(held.available, total // 2) // 100 * 100  # whole hundreds, at most half the bill
        sale = PurchaseRequest(
            receipt_id=visit.receipt,
            sold_at=visit.at,
            currency=self.programs.points.currency,
            total_minor=total,
            lines=lines,
            member_code=shopper.card_number,
            points_to_redeem=redeem,
        )
        result = await record_purchase(
            uow, self.programs.points, _NO_CODE_KEYS, Register(store.store_id, store.terminal_id, now), sale
        )
        if result.balances is not None:
            shopper.available = result.balances.available
        self._count("purchases")

    async def _return(self, uow: UnitOfWork, shopper: Shopper, back: Return) -> None:
        store = self.stores[back.store]
        request = RefundRequest(
            refund_receipt_id=back.refund_receipt,
            original_receipt_id=back.receipt,
            refunded_at=back.at,
            lines=[RefundLineIn(line_no=back.line_no, quantity=1)],
        )
        register = Register(store.store_id, store.terminal_id, back.at + POSTED_AFTER)
        result = await record_refund(uow, self.programs.points, register, request)
        if result.balances is not None:
            shopper.available = result.balances.available
        self._count("refunds")

    async def _check_in(self, uow: UnitOfWork, shopper: Shopper, visit: Visit) -> None:
        store = self.stores[visit.store]
        fix_at = visit.at - CHECKED_IN_BEFORE
        # Inside the fence, a few metres from the door; where exactly comes from the receipt, so it is
        # the same on every replay.
        bearing, share = 2 * math.pi * hash_fraction(visit.receipt), hash_fraction(f"{visit.receipt}:m")
        offset_m = store.radius_m / 4 * share
        metres_per_degree_east = METRES_PER_DEGREE * math.cos(math.radians(store.latitude))
        request = CheckInRequest(
            store_id=store.store_id,
            latitude=store.latitude + offset_m * math.sin(bearing) / METRES_PER_DEGREE,
            longitude=store.longitude + offset_m * math.cos(bearing) / metres_per_degree_east,
            accuracy_m=12.0 + 20 * share,
            fix_at=fix_at,
            trigger=Trigger.GEOFENCE_DWELL,
        )
        try:
            member_id, programs = shopper.person.member_id, self.programs
            await check_in(uow, programs.check_ins, programs.points, member_id, request, fix_at + FIX_AGE)
        except CheckInRejected:
            self._count("check_ins_rejected")  # a plan quirk (two stores too close in time): not recorded
            return
        self._count("check_ins")

    async def _session(self, uow: UnitOfWork, shopper: Shopper, session: AppSession) -> list[EventDraft]:
        member_id = shopper.person.member_id
        events = [_app_event(member_id, InteractionKind.APP_OPENED, session.at, {"screen": "home"})]
        for number, content in enumerate(session.contents, start=1):
            at = session.at + timedelta(seconds=20 * number)
            about = (SubjectType.CONTENT, content)
            events.append(_app_event(member_id, InteractionKind.CONTENT_VIEWED, at, subject=about))
        if session.browse_offers:
            events += await self._offer_list(uow, shopper, session)
        return events

    async def _offer_list(self, uow: UnitOfWork, shopper: Shopper, session: AppSession) -> list[EventDraft]:
        """The offers tab: the list the policy chooses, its cards seen, and perhaps one clipped."""
        member_id = shopper.person.member_id
        shown_at = session.at + timedelta(minutes=1)
        listed = await offers_for_member(
            uow, self.serving, self.catalogue, self.programs.offers, member_id, None, self.rng, shown_at
        )
        if listed.decision_id is None:
            return []
        self._count("offer_lists")
        seen_at = shown_at + timedelta(seconds=4)
        events = [
            _app_event(
                member_id,
                InteractionKind.OFFER_VIEWED,
                seen_at,
                {"decision_id": str(listed.decision_id)},
                (SubjectType.OFFER, str(chosen.offer.id)),
            )
            for chosen in listed.offers
        ]
        if session.clip_roll < shopper.person.habits.clip_share:
            liked = favourite_offer(shopper.person, [chosen.offer for chosen in listed.offers])
            try:
                await activate_offer(uow, member_id, liked.id, seen_at + timedelta(seconds=20))
            except OfferNotAvailable:
                return events  # it ended at midnight, between the list and the tap, as the app would say
            shopper.clips[liked.id] = self.offer_ends[liked.id]
            self._count("clips")
        return events


def favourite_offer(person: Person, cards: Sequence[OfferCard]) -> OfferCard:
    """The card the member clips: one on a category they buy, else one on the whole basket, else any
    (by title, so the choice never depends on the order the policy happened to list them in)."""

    def liking(card: OfferCard) -> tuple[int, str]:
        category = getattr(card.terms, "category", None)
        return (0 if category in person.categories else 1 if category is None else 2), card.title

    return min(cards, key=liking)


def hash_fraction(text: str) -> float:
    """A number in [0, 1) that depends only on `text` (Python's own string hash changes per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def _app_event(
    member_id: uuid.UUID,
    kind: InteractionKind,
    at: datetime,
    properties: dict[str, str] | None = None,
    subject: tuple[SubjectType, str] | None = None,
) -> EventDraft:
    """An event as the app's events endpoint records it (timeline.service.ingest_app_events)."""
    return EventDraft(
        member_id=member_id,
        kind=kind,
        occurred_at=at,
        channel=Channel.APP,
        subject_type=subject[0] if subject else None,
        subject_ref=subject[1] if subject else None,
        properties=dict(properties or {}),
    )


def _push_events(member_id: uuid.UUID, reply: PushReply) -> list[EventDraft]:
    about = (SubjectType.CAMPAIGN, str(reply.campaign_id))
    delivery = {"delivery_id": reply.delivery_id}
    events = [_app_event(member_id, InteractionKind.PUSH_RECEIVED, reply.at, delivery, about)]
    if reply.opened_at is not None:
        events.append(_app_event(member_id, InteractionKind.PUSH_OPENED, reply.opened_at, delivery, about))
    return events
