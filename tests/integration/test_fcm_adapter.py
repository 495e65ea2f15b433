"""The FCM adapter: firebase-admin's real send path pointed at the local FCM-compatible server, FCM's
answers turned into codes, service-account credentials in production; and the local server checking
messages as FCM does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import messaging

from infra.settings import Settings
from push.fcm import (
    GOOGLE_FCM_URL,
    NOT_SENT,
    OUTCOME_UNKNOWN,
    FcmSender,
    OutgoingMessage,
    retry_after,
    sender_for,
)
from tests.conftest import free_port
from tests.integration.push_support import LocalFcmServer


def message(address: str, kind: str = "fid", body: str = "New linen is in.") -> OutgoingMessage:
    return OutgoingMessage(kind, address, "Hello", body, {"delivery_id": f"d-{address}"})


async def test_firebase_admin_sends_to_the_local_server(fcm: LocalFcmServer) -> None:
    sender = FcmSender("tsunagari-proj", base_url=fcm.url)
    try:
        service = messaging._get_messaging_service(sender.app)
        assert service._fcm_url == f"{fcm.url}/v1/projects/tsunagari-proj/messages:send"
        results = await sender.send([message("fid-00000001"), message("token-0000001", kind="token")])
    finally:
        await sender.close()
    assert [r.error_code for r in results] == [None, None]
    assert all(re.fullmatch(r"projects/tsunagari-proj/messages/\d+", r.message_name or "") for r in results)
    # The two are sent concurrently: the server may receive them in either order.
    received = sorted(fcm.messages(), key=lambda m: str(m["target"]))
    assert [(m["target_kind"], m["target"]) for m in received] == [
        ("fid", "fid-00000001"),
        ("token", "token-0000001"),
    ]
    assert received[0]["title"] == "Hello"
    assert received[0]["data"] == {"delivery_id": "d-fid-00000001"}
    assert {m["project"] for m in received} == {"tsunagari-proj"}


async def test_fcm_errors_come_back_as_fcm_codes(fcm: LocalFcmServer) -> None:
    fcm.rules(
        unregistered=["fid-gone-0001"],
        sender_id_mismatch=["fid-other-0001"],
        invalid_argument=["fid-bad-00001"],
    )
    sender = FcmSender("tsunagari-proj", base_url=fcm.url)
    try:
        results = await sender.send(
            [
                message("fid-gone-0001"),
                message("fid-other-0001"),
                message("fid-bad-00001"),
                message("fid-too-big-01", body="あ" * 1500),  # 4,500 bytes
                message("fid-fine-0001"),
            ]
        )
        fcm.rules(quota_exceeded=1, retry_after_s=7)
        (throttled,) = await sender.send([message("fid-fine-0002")])
    finally:
        await sender.close()
    assert [r.error_code for r in results] == [
        "UNREGISTERED",
        "SENDER_ID_MISMATCH",
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        None,
    ]
    assert (throttled.error_code, throttled.retry_after_s) == ("QUOTA_EXCEEDED", 7.0)
    assert [m["target"] for m in fcm.messages()] == ["fid-fine-0001"]


async def test_a_server_never_reached_is_not_sent_and_a_lost_answer_is_unknown(fcm: LocalFcmServer) -> None:
    unreachable = FcmSender("tsunagari-proj", base_url=f"http://127.0.0.1:{free_port()}")
    try:
        (refused,) = await unreachable.send([message("fid-00000001")])
    finally:
        await unreachable.close()
    assert refused.error_code == NOT_SENT  # nothing left: safe to send again

    fcm.rules(latency_ms=2000)
    impatient = FcmSender("tsunagari-proj", base_url=fcm.url, timeout_s=1)
    try:
        (lost,) = await impatient.send([message("fid-00000002")])
    finally:
        await impatient.close()
    assert lost.error_code == OUTCOME_UNKNOWN  # it may have arrived: never sent again
    await fcm.wait_until_received(1)  # and it does arrive, after the sender gave up
    assert [m["target"] for m in fcm.messages()] == ["fid-00000002"]


def test_retry_after_is_seconds_and_bounded() -> None:
    assert retry_after("30") == 30.0
    assert retry_after(" 7 ") == 7.0
    assert retry_after("999999") == 900.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after(None) is None


async def test_production_uses_the_service_account_and_googles_endpoint(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = tmp_path / "service-account.json"
    account.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "retailer-prod",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "push@retailer-prod.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    sender = sender_for(Settings(fcm_credentials=str(account)))
    assert sender is not None
    try:
        service = messaging._get_messaging_service(sender.app)
        assert service._fcm_url == f"{GOOGLE_FCM_URL}/v1/projects/retailer-prod/messages:send"
    finally:
        await sender.close()
    assert sender_for(Settings()) is None  # neither credentials nor a local server: sending is off


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"message": {"fid": "a", "token": "b"}}, "Exactly one"),
        ({"message": {"notification": {"title": "t"}}}, "Exactly one"),
        ({"message": {"fid": "a", "data": {"n": 1}}}, "map of strings"),
        ({"message": {"fid": "a", "data": {"from": "x"}}}, "reserved"),
        ({"message": {"fid": "a", "data": {"google.x": "y"}}}, "reserved"),
        ({"message": {"fid": "a", "priority": "high"}}, "Unknown name"),
        ({"message": {"fid": "a", "data": {"big": "x" * 4100}}}, "too big"),
        ({"message": {"fid": "a"}, "dry": True}, "takes"),
    ],
)
def test_the_local_server_refuses_what_fcm_refuses(
    fcm: LocalFcmServer, body: dict[str, Any], problem: str
) -> None:
    response = httpx.post(f"{fcm.url}/v1/projects/p/messages:send", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert problem in error["message"]
    assert fcm.summary()["received"] == 0


def test_validate_only_is_checked_but_not_delivered(fcm: LocalFcmServer) -> None:
    response = httpx.post(
        f"{fcm.url}/v1/projects/p/messages:send", json={"message": {"fid": "a"}, "validate_only": True}
    )
    assert response.status_code == 200
    assert fcm.summary()["received"] == 0
