"""Sending due deliveries through FCM: any number of workers, each device messaged once per campaign.

A worker's round:
1. **Claim** (one transaction): up to `claim_batch` due deliveries, `FOR UPDATE SKIP LOCKED`, so
   workers never take the same row. Under a lock per member (taken in one order everywhere), each is
   checked again (campaign live, not too late, not in quiet hours, device still reachable, member's
   caps) and either claimed, moved, or not sent with its reason and a `push_suppressed` event.
2. **Send**, `concurrency` at a time, within the project's send rate. Each group is first marked
   `sending` in its own transaction; only then does it go to FCM. A cancel that came first wins.
3. **Record** each group's answers in one transaction with their `push_sent` events: sent, retried
   later (429 pauses every worker for Retry-After), given up on, or the address dead.

The claim's lease is renewed while the worker works. If the worker dies, its claims not yet marked
`sending` return to the queue; those marked `sending` (at most `concurrency` per worker, the requests
that were in flight) become `unconfirmed` and are never sent again: FCM has no idempotency key, so a
message that may have arrived is not risked twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

import msgspec
from sqlalchemy import select, update

from accounts.push_addresses import AddressKind, PushTarget, disable_dead_addresses, push_targets
from domain.clock import Clock
from domain.interactions import InteractionKind
from infra.db import Database, UnitOfWork
from infra.locks import lock_all_until_commit
from points.program import Program
from push.events import campaign_event
from push.fcm import OutgoingMessage, SendResult
from push.messages import personal_values, render_variant
from push.pacing import Pacer
from push.policy import PushPolicy
from push.rules.deliveries import at_claim
from push.rules.outcomes import Outcome, classify, gives_up, retry_delay_s
from push.rules.scheduling import QuietHours
from push.schemas import Variant
from push.tables import COUNTED_STATES, Campaign, CampaignState, Delivery, DeliveryState
from timeline.recording import record_many
from timeline.rules import EventDraft

log = logging.getLogger(__name__)
LIVE = (CampaignState.SCHEDULED, CampaignState.SENDING)
CAP_LOOKBACK = timedelta(days=8)  # a member's week, in any zone


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    campaign_id: uuid.UUID
    member_id: uuid.UUID
    slot: int
    variant: str
    address_kind: AddressKind
    address: str
    attempts: int
    first_due_at: datetime
    latest_at: datetime | None


@dataclass(frozen=True)
class Content:
    variants: dict[str, Variant]
    deep_link: str | None


class SendsMessages(Protocol):
    """What dispatch needs of FCM: push.fcm.FcmSender."""

    async def send(self, outgoing: Sequence[OutgoingMessage]) -> list[SendResult]: ...


def _groups(items: Sequence[Claimed], size: int) -> Iterator[list[Claimed]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class Dispatcher:
    def __init__(
        self,
        db: Database,
        pacer: Pacer,
        sender: SendsMessages,
        policy: PushPolicy,
        program: Program,
        clock: Clock,
    ) -> None:
        self.db, self.pacer, self.sender = db, pacer, sender
        self.policy, self.program, self.clock = policy, program, clock
        self.lease = timedelta(seconds=policy.claim_lease_seconds)
        self.group_size = min(policy.concurrency, policy.send_rate_per_second)

    async def dispatch_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim and send one batch; returns the deliveries it settled (0: nothing was due)."""
        if await self.pacer.paused_for() > 0:
            return 0
        claim_id = uuid.uuid4()
        claimed, settled = await self._claim(claim_id)
        if not claimed:
            return settled
        renew = asyncio.create_task(self._renew_lease(claim_id))
        try:
            await self._send_all(claim_id, claimed, stop)
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            # Whatever was not handed to FCM (stopped, paused, failed) goes back to the queue.
            await self._release(claim_id, self.clock.now())
        return settled + len(claimed)

    # --- 1. claim ---------------------------------------------------------------------------------

    async def _claim(self, claim_id: uuid.UUID) -> tuple[list[Claimed], int]:
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            rows = list(
                (
                    await uow.session.execute(
                        select(Delivery)
                        .where(Delivery.state == DeliveryState.PENDING, Delivery.due_at <= now)
                        .order_by(Delivery.due_at)
                        .limit(self.policy.claim_batch)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            if not rows:
                return [], 0
            campaigns = await _campaigns(uow, {row.campaign_id for row in rows})
            await lock_all_until_commit(uow, "push.caps", [r.member_id for r in rows if not r.transactional])
            counted = await _counted(uow, [r.member_id for r in rows if not r.transactional], now)
            targets = await push_targets(uow, list({row.member_id for row in rows}))
            reached = await _addresses_reached(uow, rows, targets)
            claimed: list[Claimed] = []
            suppressed: list[Delivery] = []
            for row in rows:
                campaign = campaigns[row.campaign_id]
                target = next((t for t in targets.get(row.member_id, []) if t.slot == row.device_slot), None)
                decision = at_claim(
                    campaign_live=campaign.state in LIVE,
                    transactional=row.transactional,
                    quiet_hours=_quiet_hours(campaign, self.policy),
                    time_zone=row.time_zone,
                    latest_at=row.latest_at,
                    has_address=target is not None,
                    address_reached=target is not None
                    and (row.campaign_id, row.occurrence, target.address) in reached,
                    counted=counted[row.member_id],
                    campaign_key=(row.campaign_id, row.occurrence),
                    max_per_day=self.policy.max_per_day,
                    max_per_week=self.policy.max_per_week,
                    now=now,
                )
                if decision.action == "wait":
                    row.due_at = decision.due_at or now
                elif decision.action in ("suppress", "cancel"):
                    row.state = (
                        DeliveryState.SUPPRESSED if decision.action == "suppress" else DeliveryState.CANCELLED
                    )
                    row.reason = decision.reason
                    if decision.action == "suppress":
                        suppressed.append(row)
                else:
                    assert target is not None
                    row.state, row.claim_id, row.claimed_at = DeliveryState.CLAIMED, claim_id, now
                    row.lease_until = now + self.lease
                    row.address_kind, row.address = target.kind, target.address
                    reached.add((row.campaign_id, row.occurrence, target.address))
                    if not row.transactional:
                        counted[row.member_id].append(((row.campaign_id, row.occurrence), now))
                    claimed.append(_claimed(row, target))
            await record_many(
                uow, [_event(row, InteractionKind.PUSH_SUPPRESSED, now) for row in suppressed], now
            )
        if claimed:
            await self._mark_campaigns_sending({c.campaign_id for c in claimed}, now)
        return claimed, len(rows) - len(claimed)

    async def _mark_campaigns_sending(self, campaign_ids: set[uuid.UUID], now: datetime) -> None:
        # Its own transaction: a cancel locks the campaign and then its deliveries; the claim locked
        # deliveries first, so taking the campaign there could deadlock with a cancel.
        async with self.db.unit_of_work() as uow:
            await uow.session.execute(
                update(Campaign)
                .where(Campaign.id.in_(campaign_ids), Campaign.state == CampaignState.SCHEDULED)
                .values(state=CampaignState.SENDING, started_at=now, updated_at=now)
            )

    # --- 2. send ----------------------------------------------------------------------------------

    async def _send_all(
        self, claim_id: uuid.UUID, claimed: list[Claimed], stop: asyncio.Event | None
    ) -> None:
        content = await self._content({c.campaign_id for c in claimed})
        values = await self._personal_values(claimed, content)
        for group in _groups(claimed, self.group_size):
            if (stop is not None and stop.is_set()) or await self.pacer.paused_for() > 0:
                return
            await self.pacer.take(len(group))
            handed = await self._mark_sending(claim_id, group)
            if not handed:
                continue
            outgoing = [_outgoing(c, content[c.campaign_id], values.get(c.member_id, {})) for c in handed]
            results = await self.sender.send(outgoing)
            await self._record(claim_id, handed, results)

    async def _mark_sending(self, claim_id: uuid.UUID, group: list[Claimed]) -> list[Claimed]:
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            marked = set(
                (
                    await uow.session.execute(
                        update(Delivery)
                        .where(
                            Delivery.id.in_([c.id for c in group]),
                            Delivery.claim_id == claim_id,
                            Delivery.state == DeliveryState.CLAIMED,
                        )
                        .values(
                            state=DeliveryState.SENDING,
                            attempts=Delivery.attempts + 1,
                            lease_until=now + self.lease,
                        )
                        .returning(Delivery.id)
                    )
                ).scalars()
            )
        return [c for c in group if c.id in marked]

    async def _content(self, campaign_ids: set[uuid.UUID]) -> dict[uuid.UUID, Content]:
        async with self.db.unit_of_work() as uow:
            campaigns = await _campaigns(uow, campaign_ids)
        return {
            campaign_id: Content(
                variants={v.key: v for v in msgspec.convert(campaign.variants, list[Variant])},
                deep_link=campaign.deep_link,
            )
            for campaign_id, campaign in campaigns.items()
        }

    async def _personal_values(
        self, claimed: list[Claimed], content: dict[uuid.UUID, Content]
    ) -> dict[uuid.UUID, dict[str, str]]:
        values: dict[uuid.UUID, dict[str, str]] = {}
        now = self.clock.now()
        by_campaign: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        for c in claimed:
            by_campaign[c.campaign_id].add(c.member_id)
        async with self.db.unit_of_work() as uow:
            for campaign_id, members in by_campaign.items():
                variants = list(content[campaign_id].variants.values())
                found = await personal_values(uow, self.program, list(members), variants, now)
                for member_id, member_values in found.items():
                    values.setdefault(member_id, {}).update(member_values)
        return values

    # --- 3. record --------------------------------------------------------------------------------

    async def _record(self, claim_id: uuid.UUID, handed: list[Claimed], results: list[SendResult]) -> None:
        now = self.clock.now()
        pause_s = 0.0
        accepted = {
            (c.campaign_id, c.variant) for c, r in zip(handed, results, strict=True) if r.error_code is None
        }
        async with self.db.unit_of_work() as uow:
            ours = {
                row.id: row
                for row in (
                    await uow.session.execute(
                        select(Delivery)
                        .where(
                            Delivery.id.in_([c.id for c in handed]),
                            Delivery.claim_id == claim_id,
                            Delivery.state == DeliveryState.SENDING,
                        )
                        .with_for_update()
                    )
                ).scalars()
            }
            sent: list[Delivery] = []
            dead: dict[str, list[PushTarget]] = defaultdict(list)
            for claimed, result in zip(handed, results, strict=True):
                row = ours.get(claimed.id)
                if row is None:
                    continue  # its lease ran out meanwhile and it was settled as unconfirmed
                known_valid = (claimed.campaign_id, claimed.variant) in accepted or (
                    result.error_code == "INVALID_ARGUMENT" and await _accepted_before(uow, claimed)
                )
                outcome = classify(result.error_code, known_valid)
                row.claim_id, row.lease_until = None, None
                if outcome is Outcome.SENT:
                    row.state, row.sent_at, row.fcm_message, row.reason = (
                        DeliveryState.SENT,
                        now,
                        result.message_name,
                        None,
                    )
                    sent.append(row)
                elif outcome is Outcome.RETRY:
                    delay = retry_delay_s(claimed.attempts + 1, result.retry_after_s, random.random())  # noqa: S311 - jitter, not a secret
                    if result.error_code == "QUOTA_EXCEEDED":
                        pause_s = max(pause_s, delay)
                    self._retry_or_give_up(row, claimed, result, now + timedelta(seconds=delay))
                elif outcome is Outcome.DEAD_ADDRESS:
                    row.state, row.reason = DeliveryState.FAILED, _reason(result)
                    dead[_reason(result)].append(_target(claimed))
                elif outcome is Outcome.UNCONFIRMED:
                    row.state, row.reason = DeliveryState.UNCONFIRMED, _reason(result)
                else:
                    row.state, row.reason = DeliveryState.FAILED, _reason(result)
            for reason, targets in dead.items():
                await disable_dead_addresses(uow, targets, reason, now)
            await record_many(uow, [_event(row, InteractionKind.PUSH_SENT, now) for row in sent], now)
        if pause_s:
            log.warning("FCM quota exceeded: every worker pauses", extra={"pause_s": round(pause_s, 1)})
            await self.pacer.pause(pause_s)

    def _retry_or_give_up(
        self, row: Delivery, claimed: Claimed, result: SendResult, retry_at: datetime
    ) -> None:
        give_up_after = timedelta(hours=self.policy.give_up_after_hours)
        too_late = claimed.latest_at is not None and retry_at > claimed.latest_at
        if too_late or gives_up(claimed.first_due_at, retry_at, give_up_after):
            row.state, row.reason = DeliveryState.FAILED, f"gave_up_{_reason(result)}"[:40]
            return
        row.state, row.due_at, row.reason, row.claimed_at = (
            DeliveryState.PENDING,
            retry_at,
            _reason(result),
            None,
        )

    # --- leases -----------------------------------------------------------------------------------

    async def _renew_lease(self, claim_id: uuid.UUID) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            async with self.db.unit_of_work() as uow:
                await uow.session.execute(
                    update(Delivery)
                    .where(
                        Delivery.claim_id == claim_id,
                        Delivery.state.in_((DeliveryState.CLAIMED, DeliveryState.SENDING)),
                    )
                    .values(lease_until=self.clock.now() + self.lease)
                )

    async def _release(self, claim_id: uuid.UUID, now: datetime) -> None:
        paused_s = await self.pacer.paused_for()
        async with self.db.unit_of_work() as uow:
            await uow.session.execute(
                update(Delivery)
                .where(Delivery.claim_id == claim_id, Delivery.state == DeliveryState.CLAIMED)
                .values(
                    state=DeliveryState.PENDING,
                    claim_id=None,
                    claimed_at=None,
                    lease_until=None,
                    due_at=now + timedelta(seconds=paused_s),
                )
            )


async def _campaigns(uow: UnitOfWork, campaign_ids: set[uuid.UUID]) -> dict[uuid.UUID, Campaign]:
    rows = await uow.session.execute(select(Campaign).where(Campaign.id.in_(campaign_ids)))
    return {campaign.id: campaign for campaign in rows.scalars()}


async def _counted(
    uow: UnitOfWork, member_ids: list[uuid.UUID], now: datetime
) -> defaultdict[uuid.UUID, list[tuple[object, datetime]]]:
    """Per member, the campaigns (with occurrence) claimed for them lately and when: what caps count."""
    counted: defaultdict[uuid.UUID, list[tuple[object, datetime]]] = defaultdict(list)
    if not member_ids:
        return counted
    rows = await uow.session.execute(
        select(Delivery.member_id, Delivery.campaign_id, Delivery.occurrence, Delivery.claimed_at).where(
            Delivery.member_id.in_(set(member_ids)),
            Delivery.state.in_(COUNTED_STATES),
            Delivery.transactional.is_(False),
            Delivery.claimed_at >= now - CAP_LOOKBACK,
        )
    )
    for member_id, campaign_id, occurrence, claimed_at in rows:
        if claimed_at is not None:  # always, in these states
            counted[member_id].append(((campaign_id, occurrence), claimed_at))
    return counted


async def _addresses_reached(
    uow: UnitOfWork, rows: list[Delivery], targets: dict[uuid.UUID, list[PushTarget]]
) -> set[tuple[uuid.UUID, date | None, str]]:
    """(campaign, occurrence, address) already claimed, sent or in flight, for the addresses these rows
    would go to. Locked per address until commit, so two workers cannot both claim one address (it may
    have moved between members' device rows)."""
    addresses = {
        t.address for row in rows for t in targets.get(row.member_id, []) if t.slot == row.device_slot
    }
    if not addresses:
        return set()
    await lock_all_until_commit(uow, "push.address", addresses)
    found = await uow.session.execute(
        select(Delivery.campaign_id, Delivery.occurrence, Delivery.address).where(
            Delivery.address.in_(addresses),
            Delivery.campaign_id.in_({row.campaign_id for row in rows}),
            Delivery.state.in_(COUNTED_STATES),
        )
    )
    return {(campaign_id, occurrence, address) for campaign_id, occurrence, address in found if address}


async def _accepted_before(uow: UnitOfWork, claimed: Claimed) -> bool:
    """FCM took this campaign's variant for another device: the message is valid, the address is not."""
    found = await uow.session.execute(
        select(Delivery.id)
        .where(
            Delivery.campaign_id == claimed.campaign_id,
            Delivery.variant == claimed.variant,
            Delivery.state == DeliveryState.SENT,
        )
        .limit(1)
    )
    return found.first() is not None


def _quiet_hours(campaign: Campaign, policy: PushPolicy) -> QuietHours | None:
    if not campaign.respect_quiet_hours:
        return None
    if campaign.quiet_hours:
        return msgspec.convert(campaign.quiet_hours, QuietHours)
    return policy.default_quiet_hours


def _claimed(row: Delivery, target: PushTarget) -> Claimed:
    return Claimed(
        id=row.id,
        campaign_id=row.campaign_id,
        member_id=row.member_id,
        slot=target.slot,
        variant=row.variant,
        address_kind=target.kind,
        address=target.address,
        attempts=row.attempts,
        first_due_at=row.first_due_at,
        latest_at=row.latest_at,
    )


def _target(claimed: Claimed) -> PushTarget:
    return PushTarget(claimed.member_id, claimed.slot, claimed.address_kind, claimed.address)


def _reason(result: SendResult) -> str:
    return (result.error_code or "error").lower()[:40]


def _outgoing(claimed: Claimed, content: Content, values: dict[str, str]) -> OutgoingMessage:
    variant = content.variants[claimed.variant]
    # A member erased since the claim has no fields left; the message goes out blank rather than not.
    title, body = render_variant(variant, defaultdict(str, values))
    data = {
        "delivery_id": str(claimed.id),
        "campaign_id": str(claimed.campaign_id),
        "variant": claimed.variant,
    }
    if content.deep_link is not None:
        data["deep_link"] = content.deep_link
    return OutgoingMessage(claimed.address_kind, claimed.address, title, body, data)


def _event(row: Delivery, kind: InteractionKind, now: datetime) -> EventDraft:
    return campaign_event(kind, row.member_id, row.campaign_id, row.id, row.variant, row.reason, now)
