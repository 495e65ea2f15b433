"""Sending through Firebase Cloud Messaging with firebase-admin's own send path (`send_each_async`).

Production: a service account's credentials (`TSUNAGARI_FCM_CREDENTIALS`, the JSON key file's path) and
Google's endpoint. Local (tests, the demo, benchmarks): no credentials, `TSUNAGARI_FCM_URL` names an
FCM-compatible server (push.fcm_local), and `point_at` redirects the SDK's send URL to it; everything
else (message encoding, HTTP/2 client, retries of 500/503, error parsing) is the SDK's.

Each message's outcome comes back as a `SendResult`: FCM's message name, or its error code. A request
that may have reached FCM without an answer (a timeout after sending, a dropped connection) is
`OUTCOME_UNKNOWN`: it is never retried, so no device gets a campaign twice.
"""

from __future__ import annotations

import asyncio
import re
import uuid
import warnings
from collections.abc import Sequence
from typing import Any

import firebase_admin
import google.auth.credentials
import httpx
import msgspec
from firebase_admin import credentials, exceptions, messaging

from infra.settings import Settings
from push.rules.outcomes import MAX_BACKOFF_S

LOCAL_PROJECT_ID = "tsunagari-local"
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
NOT_SENT = "UNAVAILABLE"  # the connection was never made: nothing reached FCM
GOOGLE_FCM_URL = "https://fcm.googleapis.com"
# Transport failures that prove the request never left: safe to send again.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The SDK raises these for FCM's own error codes; the rest carry the code in `FirebaseError.code`.
_FCM_CODES: dict[type[exceptions.FirebaseError], str] = {
    messaging.UnregisteredError: "UNREGISTERED",
    messaging.SenderIdMismatchError: "SENDER_ID_MISMATCH",
    messaging.QuotaExceededError: "QUOTA_EXCEEDED",
    messaging.ThirdPartyAuthError: "THIRD_PARTY_AUTH_ERROR",
}
_SECONDS = re.compile(r"^\s*(\d{1,6})\s*$")
MAX_MESSAGE_NAME = 200  # push_deliveries.fcm_message
# e.g. projects/retailer-prod/messages/0:1500415314455276%31bd1c9631bd1c96
_MESSAGE_NAME = re.compile(r"^projects/[^/\s]+/messages/[^/\s]+$")


class OutgoingMessage(msgspec.Struct, frozen=True):
    address_kind: str  # "fid" or "token"
    address: str
    title: str
    body: str
    data: dict[str, str]


class SendResult(msgspec.Struct, frozen=True):
    message_name: str | None = None  # FCM's id of the accepted message
    error_code: str | None = None  # FCM's (UNREGISTERED, QUOTA_EXCEEDED, ...), or OUTCOME_UNKNOWN
    retry_after_s: float | None = None
    detail: str | None = None


class _LocalCredential(credentials.Base):  # type: ignore[misc]
    """No credentials: a local FCM-compatible server does not check them."""

    def get_credential(self) -> google.auth.credentials.Credentials:
        return google.auth.credentials.AnonymousCredentials()  # type: ignore[no-untyped-call]


def sender_for(settings: Settings) -> FcmSender | None:
    """The sender the settings describe; None when push sending is not configured."""
    if settings.fcm_credentials is None and settings.fcm_url is None:
        return None
    project_id = settings.fcm_project_id
    if project_id is None and settings.fcm_credentials is None:
        project_id = LOCAL_PROJECT_ID
    return FcmSender(
        project_id,
        credentials_file=settings.fcm_credentials,
        base_url=settings.fcm_url,
        timeout_s=settings.fcm_timeout_s,
    )


def point_at(app: firebase_admin.App, base_url: str) -> None:
    """Send `app`'s messages to the FCM-compatible server at `base_url` instead of Google's.

    The SDK has no public option for this; its messaging service keeps the send URL in `_fcm_url`
    (firebase-admin 7.x, pinned in pyproject.toml; tests/integration/test_fcm_adapter.py fails if that
    changes).
    """
    service = messaging._get_messaging_service(app)
    if not hasattr(service, "_fcm_url"):
        raise RuntimeError("firebase-admin no longer keeps its FCM URL in _fcm_url; update push.fcm")
    service._fcm_url = f"{base_url.rstrip('/')}/v1/projects/{app.project_id}/messages:send"


class FcmSender:
    """One firebase-admin app; `send` sends a list of messages concurrently (≤ 500, FCM's batch limit)."""

    def __init__(
        self,
        project_id: str | None,
        *,
        credentials_file: str | None = None,
        base_url: str | None = None,
        timeout_s: int = 10,
    ) -> None:
        credential = (
            credentials.Certificate(credentials_file) if credentials_file is not None else _LocalCredential()
        )
        options: dict[str, object] = {"httpTimeout": timeout_s}
        if project_id is not None:  # else the service account's
            options["projectId"] = project_id
        self.app = firebase_admin.initialize_app(credential, options, name=f"tsunagari-push-{uuid.uuid4()}")
        if base_url is not None and base_url.rstrip("/") != GOOGLE_FCM_URL:
            point_at(self.app, base_url)

    async def send(self, outgoing: Sequence[OutgoingMessage]) -> list[SendResult]:
        if not outgoing:
            return []
        try:
            batch = await messaging.send_each_async([_message(m) for m in outgoing], app=self.app)
        except exceptions.UnknownError as error:
            # firebase-admin fails the whole batch, every answer lost, when it cannot read one of them (a
            # 200 that is not JSON, or not FCM's shape): each message may have reached FCM, none is resent.
            return [SendResult(error_code=OUTCOME_UNKNOWN, detail=str(error)[:200]) for _ in outgoing]
        return [_result(response) for response in batch.responses]

    async def close(self) -> None:
        service = messaging._get_messaging_service(self.app)
        await service._async_client.aclose()
        # delete_app closes the (now closed) client again with asyncio.run, which needs a thread
        # without a running loop.
        await asyncio.to_thread(firebase_admin.delete_app, self.app)


def _message(outgoing: OutgoingMessage) -> messaging.Message:
    target: dict[str, Any] = {"fid": outgoing.address}
    if outgoing.address_kind == "token":
        target = {"token": outgoing.address}
    with warnings.catch_warnings():
        # Registration tokens are deprecated in favour of installation ids, but older apps still send
        # them and FCM still accepts them.
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(
            notification=messaging.Notification(title=outgoing.title, body=outgoing.body),
            data=outgoing.data,
            **target,
        )


def _result(response: messaging.SendResponse) -> SendResult:
    if response.success:
        return SendResult(message_name=_message_name(response.message_id))
    error = response.exception
    if error.http_response is None:
        cause = error.cause
        if isinstance(cause, _NEVER_SENT):
            return SendResult(error_code=NOT_SENT, detail=str(error)[:200])
        return SendResult(error_code=OUTCOME_UNKNOWN, detail=str(error)[:200])
    code = next((code for kind, code in _FCM_CODES.items() if isinstance(error, kind)), error.code)
    return SendResult(
        error_code=str(code),
        retry_after_s=retry_after(error.http_response.headers.get("Retry-After")),
        detail=str(error)[:200],
    )


def _message_name(value: object) -> str | None:
    """FCM's name of an accepted message, kept only in FCM's shape and within what a delivery stores."""
    if isinstance(value, str) and len(value) <= MAX_MESSAGE_NAME and _MESSAGE_NAME.match(value):
        return value
    return None


def retry_after(header: str | None) -> float | None:
    """FCM's Retry-After in seconds (it sends seconds), bounded; None when absent or not seconds."""
    if header is None:
        return None
    match = _SECONDS.match(header)
    return min(float(match.group(1)), MAX_BACKOFF_S) if match else None
