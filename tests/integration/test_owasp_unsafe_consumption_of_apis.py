"""OWASP API10:2023 Unsafe consumption of APIs: FCM's answers are untrusted input. An FCM-compatible server
that answers badly (malformed or non-JSON bodies with a 200, huge bodies, a message name of any length,
wrong content types, unknown error codes, absurd Retry-After values, error messages of a megabyte) makes
the sender return a bounded, classified result, never an exception; and the worker records every
delivery in a state it can stand by (sent with a bounded FCM name, failed with a bounded reason, or
unconfirmed and never sent again), without duplicates.

Proved elsewhere and not repeated: FCM's own error codes mapped (test_fcm_adapter.py::
test_fcm_errors_come_back_as_fcm_codes), Retry-After parsing (test_retry_after_is_seconds_and_bounded), a
server never reached or an answer lost (test_a_server_never_reached_is_not_sent_and_a_lost_answer_is_unknown),
quota pauses and unknown fates in the worker (test_push_failures.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from litestar import Litestar, Response, post
from litestar.params import FromPath
from sqlalchemy import select

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from push.fcm import FcmSender, OutgoingMessage, SendResult
from push.rules.outcomes import MAX_BACKOFF_S, Outcome, classify
from push.tables import Delivery, DeliveryState
from tests.conftest import serving_asgi
from tests.integration.push_support import (
    LocalFcmServer,
    add_members,
    create_campaign,
    dispatcher,
    draw,
    schedule,
    send_all_due,
)

JSON = "application/json"


@dataclass
class Script:
    """What the hostile server answers next, and how many requests it received."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": JSON})
    received: int = 0

    def answer(self, status: int, body: bytes | str | dict[str, Any], **headers: str) -> None:
        self.status = status
        self.body = (
            json.dumps(body).encode()
            if isinstance(body, dict)
            else body
            if isinstance(body, bytes)
            else body.encode()
        )
        self.headers = {"content-type": JSON} | {k.replace("_", "-"): v for k, v in headers.items()}


def hostile_fcm(script: Script) -> Litestar:
    @post("/v1/projects/{project:str}/messages:send", status_code=200)
    async def send(project: FromPath[str]) -> Response[bytes]:
        script.received += 1
        return Response(script.body, status_code=script.status, headers=script.headers)

    return Litestar([send], logging_config=None)


@dataclass(frozen=True)
class Hostile:
    script: Script
    url: str


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[Hostile]:
    script = Script()
    with serving_asgi(hostile_fcm(script), "hostile-fcm") as url:
        yield Hostile(script, url)


@pytest.fixture
def hostile(hostile_server: Hostile) -> Hostile:
    hostile_server.script.answer(200, {"name": "projects/p/messages/1"})
    hostile_server.script.received = 0
    return hostile_server


def fcm_error(
    status: int, code: str, message: str = "refused", fcm_code: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if fcm_code is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
        ]
    return {"error": error}


MESSAGE = OutgoingMessage("fid", "fid-00000001", "Hello", "New linen is in.", {"delivery_id": "d-1"})
# What a bad answer may be taken for: its fate unknown (it may have arrived: never sent again) or a failure.
NOT_SENT_AGAIN = {Outcome.UNCONFIRMED, Outcome.FAILED}
ANSWERS: dict[str, tuple[int, bytes | str | dict[str, Any], dict[str, str]]] = {
    "a 200 with malformed JSON": (200, b'{"name": "projects/p/messa', {}),
    "a 200 with an HTML page": (200, "<html><body>OK</body></html>", {"content_type": "text/html"}),
    "a 200 with JSON of another shape": (200, {"name": ["not", "a", "name"], "id": 7}, {}),
    "a 200 with JSON that is a list": (200, b"[1, 2, 3]", {}),
    "a 200 with an empty body": (200, b"", {}),
    "an error with malformed JSON": (400, b'{"error": {"status": ', {}),
    "an error that is an HTML page": (403, "<html>Forbidden</html>", {"content_type": "text/html"}),
    "an error code FCM has never sent": (400, fcm_error(400, "BRAND_NEW", fcm_code="BRAND_NEW_CODE"), {}),
    "an error of a megabyte": (400, fcm_error(400, "INVALID_ARGUMENT", "x" * 1_000_000), {}),
    "an error status that is no string": (400, {"error": {"code": "x", "status": {"nested": True}}}, {}),
}


@pytest.mark.parametrize("how", list(ANSWERS))
async def test_a_bad_answer_is_a_bounded_result_that_is_never_sent_again(hostile: Hostile, how: str) -> None:
    status, body, headers = ANSWERS[how]
    hostile.script.answer(status, body, **headers)
    sender = FcmSender("p", base_url=hostile.url, timeout_s=5)
    try:
        (result,) = await sender.send([MESSAGE])
    finally:
        await sender.close()
    assert isinstance(result, SendResult)
    assert result.detail is None or len(result.detail) <= 200
    assert result.error_code is None or len(result.error_code) <= 64
    if result.error_code is None:  # taken as accepted: its name is FCM's shape, or none
        assert result.message_name is None or isinstance(result.message_name, str), how
        assert result.message_name is None or re.fullmatch(
            r"projects/p/messages/\w{1,180}", result.message_name
        )
    else:
        assert classify(result.error_code, message_known_valid=False) in NOT_SENT_AGAIN, (how, result)


@pytest.mark.parametrize(
    ("header", "bounded"),
    [
        ("99999999999999999999", None),
        ("-5", None),
        ("1e9", None),
        ("NaN", None),
        ("900000", MAX_BACKOFF_S),
        ("3", 3.0),
    ],
)
async def test_retry_after_on_the_wire_is_taken_only_as_bounded_seconds(
    hostile: Hostile, header: str, bounded: float | None
) -> None:
    hostile.script.answer(
        429, fcm_error(429, "RESOURCE_EXHAUSTED", fcm_code="QUOTA_EXCEEDED"), retry_after=header
    )
    sender = FcmSender("p", base_url=hostile.url, timeout_s=5)
    try:
        (result,) = await sender.send([MESSAGE])
    finally:
        await sender.close()
    assert (result.error_code, result.retry_after_s) == ("QUOTA_EXCEEDED", bounded)


async def test_a_huge_answer_or_a_long_message_name_is_recorded_bounded_and_sent_once(
    hostile: Hostile,
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    marketer: dict[str, Any],
) -> None:
    """A 200 whose name is 10,000 characters, in an answer padded to 5 MB: the worker records the
    deliveries as sent (FCM said so), keeps no more of the name than its column holds, and sends nothing
    twice."""
    await add_members(db, 3, clock.now())
    name = "projects/p/messages/" + "9" * 10_000
    hostile.script.answer(200, {"name": name, "padding": "x" * 5_000_000})
    campaign = await create_campaign(client, marketer, transactional=True)
    await schedule(client, marketer, campaign["id"])
    await draw(db, clock, settings)
    async with dispatcher(settings, LocalFcmServer(hostile.url), clock, db) as sender:
        await send_all_due(sender)
        await send_all_due(sender)
    async with db.unit_of_work() as uow:
        rows = list((await uow.session.execute(select(Delivery))).scalars())
    assert {row.state for row in rows} == {DeliveryState.SENT}
    assert all(row.fcm_message is None or len(row.fcm_message) <= 200 for row in rows)
    assert hostile.script.received == 3


async def test_deliveries_answered_with_garbage_are_settled_and_never_sent_again(
    hostile: Hostile,
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    marketer: dict[str, Any],
) -> None:
    await add_members(db, 3, clock.now())
    hostile.script.answer(200, "<html>not FCM</html>", content_type="text/html")
    campaign = await create_campaign(client, marketer, transactional=True)
    await schedule(client, marketer, campaign["id"])
    await draw(db, clock, settings)
    async with dispatcher(settings, LocalFcmServer(hostile.url), clock, db) as sender:
        await send_all_due(sender)
        received = hostile.script.received
        await send_all_due(sender)
    assert received == 3
    assert hostile.script.received == received
    async with db.unit_of_work() as uow:
        rows = list((await uow.session.execute(select(Delivery))).scalars())
    assert {row.state for row in rows} <= {DeliveryState.UNCONFIRMED, DeliveryState.FAILED}
    assert all(row.reason is not None and len(row.reason) <= 40 for row in rows)


async def test_a_name_in_fcms_own_shape_is_kept_as_it_is(hostile: Hostile) -> None:
    """The control: bounding the name does not lose FCM's real ones."""
    name = "projects/p/messages/0:1500415314455276%31bd1c9631bd1c96"
    hostile.script.answer(200, {"name": name})
    sender = FcmSender("p", base_url=hostile.url, timeout_s=5)
    try:
        (result,) = await sender.send([MESSAGE])
    finally:
        await sender.close()
    assert (result.error_code, result.message_name) == (None, name)
