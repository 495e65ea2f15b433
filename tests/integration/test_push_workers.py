"""Sending with real worker processes: one killed mid-campaign and another started sends nothing twice;
a campaign cancelled mid-send stops after the messages already in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import IO, Any

import httpx
import msgspec

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings, env_for_children
from push.policy import PushPolicy
from push.tables import DeliveryState
from tests.integration.factories import bearer
from tests.integration.push_support import (
    TEST_POLICY,
    LocalFcmServer,
    add_members,
    address_of,
    create_campaign,
    deliveries,
    dispatcher,
    draw,
    schedule,
    send_all_due,
    states,
)

UNSETTLED = {"pending", "claimed", "sending"}


class Worker:
    """`tsunagari worker` in its own process, as deployed."""

    def __init__(self, settings: Settings, fcm: LocalFcmServer, policy: PushPolicy) -> None:
        env = {
            **os.environ,
            **env_for_children(settings),
            "TSUNAGARI_FCM_URL": fcm.url,
            "TSUNAGARI_PUSH_POLICY": msgspec.json.encode(policy).decode(),
            "TSUNAGARI_LOG_LEVEL": "WARNING",
        }
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "worker"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        output = self.output()
        self.log.close()
        assert code == 0, output
        return code


async def eventually(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def received(fcm: LocalFcmServer) -> int:
    summary = await asyncio.to_thread(fcm.summary)
    return int(summary["received"])


async def _at_least(fcm: LocalFcmServer, count: int) -> bool:
    return await received(fcm) >= count


async def test_a_worker_killed_mid_campaign_and_restarted_sends_nothing_twice(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    members = await add_members(db, 300, clock.now())
    fcm.rules(latency_ms=150)  # each group of 20 spends 150 ms at FCM: the kill lands mid-send
    policy = msgspec.structs.replace(TEST_POLICY, concurrency=20, claim_batch=100, claim_lease_seconds=3)
    campaign = await create_campaign(client, marketer)
    await schedule(client, marketer, campaign["id"])

    first = Worker(settings, fcm, policy)
    try:
        await eventually(lambda: _at_least(fcm, 60), 60, "the first worker to send")
    finally:
        first.kill()
    at_kill = await received(fcm)
    assert at_kill < 300, "the worker finished before it could be killed mid-campaign"

    second = Worker(settings, fcm, policy)
    try:

        async def settled() -> bool:
            return not UNSETTLED & set(await states(db, campaign["id"]))

        await eventually(settled, 90, "the second worker to settle every delivery")
    finally:
        second.stop()

    summary = await asyncio.to_thread(fcm.summary)
    per_target = Counter(m["target"] for m in await asyncio.to_thread(fcm.messages))
    assert summary["duplicate_deliveries"] == summary["repeated_to_device"] == []
    assert set(per_target.values()) == {1}  # no phone got this campaign twice
    rows = await deliveries(db, campaign["id"])
    by_state = Counter(r.state for r in rows)
    assert set(by_state) <= {DeliveryState.SENT, DeliveryState.UNCONFIRMED, DeliveryState.CONTROL}
    assert by_state[DeliveryState.UNCONFIRMED] <= policy.concurrency  # at most the group that was in flight
    assert {r.reason for r in rows if r.state is DeliveryState.UNCONFIRMED} <= {"worker_lost"}
    sent = {address_of(r.member_id) for r in rows if r.state is DeliveryState.SENT}
    assert sent <= set(per_target)  # every delivery recorded as sent arrived...
    assert len(per_target) - len(sent) <= by_state[DeliveryState.UNCONFIRMED]  # ...and only those in doubt
    assert len(rows) == len(members)


async def test_a_campaign_cancelled_mid_send_stops_after_what_was_in_flight(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    await add_members(db, 200, clock.now())
    fcm.rules(latency_ms=100)
    policy = msgspec.structs.replace(TEST_POLICY, concurrency=10, claim_batch=50)
    campaign = await create_campaign(client, marketer)
    await schedule(client, marketer, campaign["id"])
    await draw(db, clock, settings, policy)
    async with dispatcher(settings, fcm, clock, db, policy) as sender:
        sending = asyncio.create_task(send_all_due(sender, rounds=100))
        await eventually(lambda: _at_least(fcm, 20), 30, "the first messages")
        cancelled = await client.post(
            f"/v1/console/campaigns/{campaign['id']}/cancel", headers=bearer(marketer)
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
        at_cancel = await received(fcm)
        await sending
        assert await sender.dispatch_once() == 0
    await asyncio.sleep(0.3)  # anything still on its way to the local server lands
    final = await received(fcm)
    assert final <= at_cancel + policy.concurrency  # only the group already handed to FCM
    by_state = Counter(r.state for r in await deliveries(db, campaign["id"]))
    assert set(by_state) <= {DeliveryState.SENT, DeliveryState.CANCELLED, DeliveryState.CONTROL}
    assert by_state[DeliveryState.SENT] == final
    assert by_state[DeliveryState.CANCELLED] >= 200 - final - by_state[DeliveryState.CONTROL] > 100
    again = await client.post(f"/v1/console/campaigns/{campaign['id']}/cancel", headers=bearer(marketer))
    assert again.status_code == 409
