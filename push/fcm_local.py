"""A local FCM HTTP v1-compatible server: what tests, the demo and benchmarks send to.

`POST /v1/projects/{project}/messages:send` checks a message as FCM does (one target of fid, token,
topic or condition; notification and data fields as strings; data keys FCM reserves refused; at most
4,096 bytes besides the target), records what it accepted, and answers as FCM would, with FCM's error
body. Failures are injected by rule (`POST /_local/rules`): addresses answered UNREGISTERED,
SENDER_ID_MISMATCH or INVALID_ARGUMENT, the next N requests answered 429 QUOTA_EXCEEDED (with
Retry-After) or 503 UNAVAILABLE, and a latency per request.

`GET /_local/messages` lists what was received, `GET /_local/summary` counts it (duplicates: one
delivery id received more than once), `DELETE /_local/messages` and `DELETE /_local/rules` reset.
Run it with `tsunagari fcm-local`; `tsunagari serve` runs one itself when no FCM credentials are set.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

MAX_PAYLOAD_BYTES = 4096
TARGETS = ("fid", "token", "topic", "condition")
MESSAGE_FIELDS = frozenset(
    {*TARGETS, "name", "data", "notification", "android", "webpush", "apns", "fcm_options"}
)
NOTIFICATION_FIELDS = frozenset({"title", "body", "image"})
RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})
RESERVED_DATA_PREFIXES = ("google.", "gcm.")
MAX_LISTED = 1000


class Rules(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    unregistered: list[str] = msgspec.field(default_factory=list)  # addresses FCM no longer knows
    sender_id_mismatch: list[str] = msgspec.field(default_factory=list)
    invalid_argument: list[str] = msgspec.field(default_factory=list)  # addresses FCM calls malformed
    quota_exceeded: Annotated[int, msgspec.Meta(ge=0)] = 0  # the next N requests get 429
    retry_after_s: Annotated[int, msgspec.Meta(ge=0, le=3600)] | None = None
    unavailable: Annotated[int, msgspec.Meta(ge=0)] = 0  # the next N requests get 503
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 0


class Received(msgspec.Struct, frozen=True):
    seq: int
    project: str
    target_kind: str
    target: str
    title: str | None
    body: str | None
    data: dict[str, str]
    received_at: datetime


class Summary(msgspec.Struct, frozen=True):
    received: int
    distinct_deliveries: int
    duplicate_deliveries: list[str]  # delivery ids received more than once
    # "<campaign id> <target>" received more than once: a device sent one campaign twice (for a one-off
    # campaign, a duplicate even when the delivery ids differ)
    repeated_to_device: list[str]
    answered: dict[str, int]  # "ok" or FCM's error code -> requests


class LocalFcm:
    """What the server received and the failure rules it follows (one process, in memory)."""

    def __init__(self) -> None:
        self.rules = Rules()
        self.received: list[Received] = []
        self.answered: Counter[str] = Counter()
        self._seq = itertools.count(1)

    def reset(self) -> None:
        self.received.clear()
        self.answered.clear()

    def summary(self) -> Summary:
        per_delivery = Counter(m.data.get("delivery_id", f"no-id-{m.seq}") for m in self.received)
        per_device = Counter(
            f"{m.data['campaign_id']} {m.target}" for m in self.received if "campaign_id" in m.data
        )
        return Summary(
            received=len(self.received),
            distinct_deliveries=len(per_delivery),
            duplicate_deliveries=sorted(d for d, count in per_delivery.items() if count > 1),
            repeated_to_device=sorted(d for d, count in per_device.items() if count > 1),
            answered=dict(self.answered),
        )


def _error(status: int, code: str, message: str, fcm_code: str | None = None) -> Response[bytes]:
    body: dict[str, Any] = {"code": status, "message": message, "status": code}
    if fcm_code is not None:
        body["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
        ]
    return Response(msgspec.json.encode({"error": body}), status_code=status, media_type="application/json")


def _invalid(message: str) -> Response[bytes]:
    return _error(400, "INVALID_ARGUMENT", message, "INVALID_ARGUMENT")


def _payload_problem(message: Any) -> str | None:
    """Why FCM would refuse this message, or None."""
    if not isinstance(message, dict):
        return "message must be an object"
    unknown = set(message) - MESSAGE_FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r} at 'message'"
    targets = [t for t in TARGETS if t in message]
    if len(targets) != 1 or not isinstance(message[targets[0]], str) or not message[targets[0]]:
        return "Exactly one of fid, token, topic or condition must be given"
    notification = message.get("notification", {})
    if not isinstance(notification, dict) or set(notification) - NOTIFICATION_FIELDS:
        return "notification takes only title, body and image"
    if not all(isinstance(value, str) for value in notification.values()):
        return "notification fields are strings"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "data is a map of strings to strings"
    reserved = [k for k in data if k in RESERVED_DATA_KEYS or k.startswith(RESERVED_DATA_PREFIXES)]
    if reserved:
        return f"data key {reserved[0]!r} is reserved"
    payload = {key: value for key, value in message.items() if key not in TARGETS}
    if len(msgspec.json.encode(payload)) > MAX_PAYLOAD_BYTES:
        return f"Message is too big: the payload exceeds {MAX_PAYLOAD_BYTES} bytes"
    return None


def _fcm(request: Request[Any, Any, Any]) -> LocalFcm:
    fcm: LocalFcm = request.app.state.fcm
    return fcm


@post("/v1/projects/{project:str}/messages:send", status_code=200)
async def send(request: Request[Any, Any, Any], project: FromPath[str]) -> Response[bytes]:
    fcm = _fcm(request)
    response = await _answer(fcm, project, await request.body())
    fcm.answered[_answer_code(response)] += 1
    return response


def _answer_code(response: Response[bytes]) -> str:
    if response.status_code == 200:
        return "ok"
    error = msgspec.json.decode(response.content)["error"]
    details = error.get("details") or [{}]
    return str(details[0].get("errorCode") or error["status"])


async def _answer(fcm: LocalFcm, project: str, raw: bytes) -> Response[bytes]:
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return _invalid("Invalid JSON payload received")
    if not isinstance(body, dict) or set(body) - {"message", "validate_only"}:
        return _invalid("the request takes `message` and `validate_only`")
    problem = _payload_problem(body.get("message"))
    if problem is not None:
        return _invalid(problem)
    message: dict[str, Any] = body["message"]
    rules = fcm.rules
    if rules.latency_ms:
        await asyncio.sleep(rules.latency_ms / 1000)
    if rules.quota_exceeded > 0:
        rules.quota_exceeded -= 1
        response = _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for sending", "QUOTA_EXCEEDED")
        if rules.retry_after_s is not None:
            response.headers["Retry-After"] = str(rules.retry_after_s)
        return response
    if rules.unavailable > 0:
        rules.unavailable -= 1
        return _error(503, "UNAVAILABLE", "The service is currently unavailable", "UNAVAILABLE")
    kind = next(t for t in TARGETS if t in message)
    target = message[kind]
    if target in rules.unregistered:
        return _error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
    if target in rules.sender_id_mismatch:
        return _error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
    if target in rules.invalid_argument:
        return _invalid("The registration token is not a valid FCM registration token")
    seq = next(fcm._seq)
    if not body.get("validate_only"):
        notification = message.get("notification", {})
        fcm.received.append(
            Received(
                seq=seq,
                project=project,
                target_kind=kind,
                target=target,
                title=notification.get("title"),
                body=notification.get("body"),
                data=message.get("data", {}),
                received_at=datetime.now(UTC),
            )
        )
    name = msgspec.json.encode({"name": f"projects/{project}/messages/{seq}"})
    return Response(name, status_code=200, media_type="application/json")


@get("/_local/messages")
async def list_messages(request: Request[Any, Any, Any], after: FromQuery[int] = 0) -> list[Received]:
    return [m for m in _fcm(request).received if m.seq > after][:MAX_LISTED]


@get("/_local/summary")
async def summary(request: Request[Any, Any, Any]) -> Summary:
    return _fcm(request).summary()


@delete("/_local/messages")
async def forget_messages(request: Request[Any, Any, Any]) -> None:
    _fcm(request).reset()


@post("/_local/rules", status_code=200)
async def set_rules(request: Request[Any, Any, Any], data: JSONBody[Rules]) -> Rules:
    _fcm(request).rules = data
    return data


@delete("/_local/rules")
async def clear_rules(request: Request[Any, Any, Any]) -> None:
    _fcm(request).rules = Rules()


def create_local_fcm() -> Litestar:
    return Litestar(
        route_handlers=[send, list_messages, summary, forget_messages, set_rules, clear_rules],
        state=State({"fcm": LocalFcm()}),
        openapi_config=None,
    )
