from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import segno

from accounts.device_secrets import device_code_secret, new_device_salt, secret_for_app, secret_from_app
from accounts.rules import luhn_check_digit
from points.code_images import code128_svg, qr_svg
from points.member_codes import (
    CODE_LENGTH,
    STEP_S,
    ScannedCode,
    StaticCard,
    code_expires_at,
    member_code,
    one_time_password,
    parse_scanned,
    step_window,
    time_step,
    verify,
)

SVG_ROOT = "{http://www.w3.org/2000/svg}svg"
CODE_SIGNING_KEY = "code-signing-key-for-unit-tests-0123456789"
MEMBER_ID = uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
VECTOR_SECRET = bytes(range(32))
VECTOR_CARD = "2123456789012343"
VECTOR_AT = datetime.fromtimestamp(1_700_000_000, UTC)  # 2023-11-14T22:13:20Z
STEP_START = datetime.fromtimestamp(56_666_666 * STEP_S, UTC)  # the step containing VECTOR_AT


def card_number(body: str) -> str:
    return body + luhn_check_digit(body)


def device_secret(slot: int, salt: bytes = b"s" * 16) -> bytes:
    return device_code_secret(CODE_SIGNING_KEY, MEMBER_ID, slot, salt)


def scanned(payload: str) -> ScannedCode:
    parsed = parse_scanned(payload)
    assert isinstance(parsed, ScannedCode)
    return parsed


def test_payload_matches_the_documented_algorithm() -> None:
    step = 1_700_000_000 // 30
    message = b"tsunagari-member-code-v1\x00" + VECTOR_CARD.encode() + bytes([3]) + struct.pack(">Q", step)
    digest = hmac.new(VECTOR_SECRET, message, hashlib.sha256).digest()
    offset = digest[31] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    independent = f"{VECTOR_CARD}03{step % 100:02d}{number % 1_000_000:06d}"

    assert independent == "21234567890123430366914987"  # the vector quoted in the module docstring
    assert member_code(VECTOR_CARD, 3, VECTOR_SECRET, VECTOR_AT) == independent
    assert one_time_password(VECTOR_SECRET, VECTOR_CARD, 3, step) == "914987"
    assert secret_for_app(VECTOR_SECRET) == "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ"


def test_device_secret_is_hmac_of_the_documented_message() -> None:
    salt = bytes(range(100, 116))
    message = b"tsunagari-device-code-secret-v1\x00" + MEMBER_ID.bytes + bytes([7]) + salt
    independent = hmac.new(CODE_SIGNING_KEY.encode(), message, hashlib.sha256).digest()
    assert device_code_secret(CODE_SIGNING_KEY, MEMBER_ID, 7, salt) == independent


def test_device_secrets_depend_on_key_member_slot_and_salt() -> None:
    salt = b"a" * 16
    secrets = {
        device_code_secret(CODE_SIGNING_KEY, MEMBER_ID, 0, salt),
        device_code_secret("another-code-signing-key-0123456789", MEMBER_ID, 0, salt),
        device_code_secret(CODE_SIGNING_KEY, uuid.UUID(int=1), 0, salt),
        device_code_secret(CODE_SIGNING_KEY, MEMBER_ID, 1, salt),
        device_code_secret(CODE_SIGNING_KEY, MEMBER_ID, 0, b"b" * 16),
    }
    assert len(secrets) == 5
    assert all(len(secret) == 32 for secret in secrets)


def test_new_device_salts_are_sixteen_random_bytes() -> None:
    salts = {new_device_salt() for _ in range(10)}
    assert len(salts) == 10
    assert all(len(salt) == 16 for salt in salts)


@pytest.mark.parametrize("offset_s", [0, 1, 15, 29.999999])
def test_code_is_the_same_throughout_a_step(offset_s: float) -> None:
    at = STEP_START + timedelta(seconds=offset_s)
    assert member_code(VECTOR_CARD, 3, VECTOR_SECRET, at) == member_code(
        VECTOR_CARD, 3, VECTOR_SECRET, STEP_START
    )


def test_code_rotates_every_step() -> None:
    codes = [
        member_code(VECTOR_CARD, 3, VECTOR_SECRET, STEP_START + timedelta(seconds=STEP_S * n))
        for n in range(20)
    ]
    assert len(set(codes)) == 20
    assert len({code[-6:] for code in codes}) == 20
    assert all(len(code) == CODE_LENGTH and code.isdigit() for code in codes)


@pytest.mark.parametrize(
    ("steps_later", "accepted"),
    [(-2, False), (-1, True), (0, True), (1, True), (2, False), (3, False), (100, False)],
)
def test_verification_accepts_one_step_of_skew_either_way(steps_later: int, accepted: bool) -> None:
    secret = device_secret(3)
    code = scanned(member_code(VECTOR_CARD, 3, secret, STEP_START))
    now = STEP_START + timedelta(seconds=STEP_S * steps_later + 10)
    assert verify(code, secret, now) == (time_step(STEP_START) if accepted else None)


@pytest.mark.parametrize(
    ("seconds_later", "accepted"),
    [(0, True), (30, True), (59, True), (60, False), (90, False), (3600, False)],
)
def test_a_screenshot_replayed_after_a_minute_fails(seconds_later: int, accepted: bool) -> None:
    secret = device_secret(3)
    screenshot = member_code(VECTOR_CARD, 3, secret, STEP_START)
    now = STEP_START + timedelta(seconds=seconds_later)
    assert (verify(scanned(screenshot), secret, now) is not None) == accepted


def test_verification_without_skew_accepts_only_the_current_step() -> None:
    secret = device_secret(3)
    code = scanned(member_code(VECTOR_CARD, 3, secret, STEP_START))
    assert verify(code, secret, STEP_START, skew_steps=0) == time_step(STEP_START)
    assert verify(code, secret, STEP_START + timedelta(seconds=STEP_S), skew_steps=0) is None


def test_a_wrong_secret_fails() -> None:
    code = scanned(member_code(VECTOR_CARD, 3, device_secret(3), STEP_START))
    assert verify(code, device_secret(3, salt=b"x" * 16), STEP_START) is None
    assert verify(code, VECTOR_SECRET, STEP_START) is None


def test_another_devices_code_fails() -> None:
    phone, tablet = device_secret(1), device_secret(2)
    from_phone = member_code(VECTOR_CARD, 1, phone, STEP_START)
    # The phone's code relabelled as the tablet's slot, checked with the tablet's secret.
    relabelled = scanned(from_phone[:16] + "02" + from_phone[18:])
    assert verify(relabelled, tablet, STEP_START) is None
    # The tablet's secret used to make a code that claims the phone's slot.
    impostor = scanned(member_code(VECTOR_CARD, 1, tablet, STEP_START))
    assert verify(impostor, phone, STEP_START) is None


def _replace_card(code: str) -> str:
    return card_number("212345678901235") + code[16:]


def _bump_otp(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def _bump_step_low(code: str) -> str:
    return code[:18] + f"{(int(code[18:20]) + 1) % 100:02d}" + code[20:]


@pytest.mark.parametrize("tamper", [_replace_card, _bump_otp, _bump_step_low])
def test_a_tampered_code_fails(tamper: Callable[[str], str]) -> None:
    secret = device_secret(3)
    tampered = tamper(member_code(VECTOR_CARD, 3, secret, STEP_START))
    assert verify(scanned(tampered), secret, STEP_START) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "21234567890123430366914987",
            ScannedCode(card_number=VECTOR_CARD, slot=3, step_low=66, otp="914987"),
        ),
        (
            " 21234567890123439900000042\r\n",
            ScannedCode(card_number=VECTOR_CARD, slot=99, step_low=0, otp="000042"),
        ),
        (VECTOR_CARD, StaticCard(card_number=VECTOR_CARD)),
        (f"\t{VECTOR_CARD}\n", StaticCard(card_number=VECTOR_CARD)),
        ("21234567890123440366914987", None),  # bad Luhn in the code's card number
        ("2123456789012344", None),  # bad Luhn in a static card number
        ("2123456789012343036691498", None),  # 25 digits
        ("212345678901234303669149870", None),  # 27 digits
        ("212345678901234", None),  # 15 digits
        ("2123 4567 8901 2343", None),
        ("2123456789012343036691498A", None),
        ("ABCDEFGHIJKLMNOP", None),
        ("", None),
        ("   ", None),
        ("-123456789012343", None),
        ("２１２３４５６７８９０１２３４３", None),  # full-width digits  # noqa: RUF001
        ("٢١٢٣٤٥٦٧٨٩٠١٢٣٤٣", None),  # Arabic-Indic digits
    ],
)
def test_parse_scanned(text: str, expected: ScannedCode | StaticCard | None) -> None:
    assert parse_scanned(text) == expected


@pytest.mark.parametrize(
    "transform",
    [
        lambda text: text,
        str.lower,
        lambda text: text + "====",
        lambda text: f"  {text.lower()}==== \n",
    ],
)
def test_secret_for_app_round_trips(transform: Callable[[str], str]) -> None:
    secret = device_secret(5)
    text = secret_for_app(secret)
    assert "=" not in text
    assert len(text) == 52
    assert secret_from_app(transform(text)) == secret


@pytest.mark.parametrize(
    "text",
    ["", "AAAA", "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYP1", "not base32 at all!"],
)
def test_secret_from_app_rejects_what_is_not_a_code_secret(text: str) -> None:
    with pytest.raises(ValueError, match=r"base32|bytes"):
        secret_from_app(text)


@pytest.mark.parametrize(
    ("at", "step"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (datetime(1970, 1, 1, 0, 0, 29, 999_999, tzinfo=UTC), 0),
        (datetime(1970, 1, 1, 0, 0, 30, tzinfo=UTC), 1),
        (VECTOR_AT, 56_666_666),
        (STEP_START + timedelta(seconds=30) - timedelta(microseconds=1), 56_666_666),
        (STEP_START + timedelta(seconds=30), 56_666_667),
        (datetime(2023, 11, 15, 7, 13, 20, tzinfo=timezone(timedelta(hours=9))), 56_666_666),
    ],
)
def test_time_step_boundaries(at: datetime, step: int) -> None:
    assert time_step(at) == step
    start, end = step_window(step)
    assert start <= at < end
    assert end - start == timedelta(seconds=STEP_S)
    assert start.tzinfo is UTC
    assert code_expires_at(at) == end


def test_a_code_expires_when_its_step_ends() -> None:
    assert step_window(56_666_666) == (STEP_START, STEP_START + timedelta(seconds=30))
    assert code_expires_at(VECTOR_AT) == datetime(2023, 11, 14, 22, 13, 30, tzinfo=UTC)
    assert code_expires_at(STEP_START + timedelta(seconds=30)) == STEP_START + timedelta(seconds=60)


NAIVE = datetime(2023, 11, 14, 22, 13, 20)


@pytest.mark.parametrize(
    "call",
    [
        lambda: time_step(NAIVE),
        lambda: code_expires_at(NAIVE),
        lambda: member_code(VECTOR_CARD, 3, VECTOR_SECRET, NAIVE),
        lambda: verify(scanned("21234567890123430366914987"), VECTOR_SECRET, NAIVE),
    ],
)
def test_naive_datetimes_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: device_code_secret(CODE_SIGNING_KEY, MEMBER_ID, -1, b"s" * 16),
        lambda: device_code_secret(CODE_SIGNING_KEY, MEMBER_ID, 100, b"s" * 16),
        lambda: member_code(VECTOR_CARD, 100, VECTOR_SECRET, VECTOR_AT),
        lambda: one_time_password(VECTOR_SECRET, VECTOR_CARD, -1, 0),
    ],
)
def test_slots_outside_0_to_99_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="slot"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: device_code_secret("", MEMBER_ID, 0, b"s" * 16),
        lambda: device_code_secret(CODE_SIGNING_KEY, MEMBER_ID, 0, b"short"),
        lambda: one_time_password(b"too short", VECTOR_CARD, 0, 0),
        lambda: one_time_password(VECTOR_SECRET, "2123456789012344", 0, 0),
        lambda: one_time_password(VECTOR_SECRET, VECTOR_CARD, 0, -1),
        lambda: verify(scanned("21234567890123430366914987"), VECTOR_SECRET, VECTOR_AT, skew_steps=50),
        lambda: verify(scanned("21234567890123430366914987"), VECTOR_SECRET, VECTOR_AT, skew_steps=-1),
    ],
)
def test_malformed_inputs_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        call()


PAYLOAD = "21234567890123430366914987"


def test_qr_svg_is_a_small_numeric_qr_code() -> None:
    svg = qr_svg(PAYLOAD)
    root = ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
    assert root.tag == SVG_ROOT
    assert "viewBox" in root.attrib
    assert not svg.startswith("<?xml")
    qr = segno.make_qr(PAYLOAD, error="m", boost_error=False)
    assert not qr.is_micro
    assert qr.version == 1
    assert qr.mode == "numeric"
    assert qr.error == "M"


def test_code128_svg_is_bars_without_text() -> None:
    svg = code128_svg(PAYLOAD)
    root = ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
    assert root.tag == SVG_ROOT
    assert not svg.startswith("<?xml")
    assert root.find(".//{http://www.w3.org/2000/svg}text") is None
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect")) > 20


@pytest.mark.parametrize("render", [qr_svg, code128_svg])
@pytest.mark.parametrize("payload", ["", "2123abc", "２１２３"])  # noqa: RUF001
def test_images_accept_only_digit_payloads(render: Callable[[str], str], payload: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        render(payload)


def test_base32_alphabet_is_rfc_4648() -> None:
    secret = device_secret(9)
    assert base64.b32decode(secret_for_app(secret) + "====") == secret


APP_GUIDE = Path(__file__).parents[2] / "docs" / "app-integration.md"
_VECTOR_ROW = re.compile(r"^\| (\d{16}) \| (\d+) \| (\d+) \| (\d+) \| (\d{6}) \| (\d{26}) \|$", re.MULTILINE)


def test_the_app_guide_vectors_are_what_the_server_computes() -> None:
    """An app developer builds codes from docs/app-integration.md alone; its table must be right."""
    guide = APP_GUIDE.read_text()
    secret_text = re.search(r"`code_secret` = `([A-Z2-7]+)`", guide)
    assert secret_text is not None
    secret = secret_from_app(secret_text.group(1))
    assert secret == VECTOR_SECRET
    rows = _VECTOR_ROW.findall(guide)
    assert len(rows) >= 3
    for card, slot, unix, step, otp, code in rows:
        at = datetime.fromtimestamp(int(unix), UTC)
        assert time_step(at) == int(step)
        assert one_time_password(secret, card, int(slot), int(step)) == otp
        assert member_code(card, int(slot), secret, at) == code
