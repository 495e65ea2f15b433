"""Rotating member codes: what a shopper's phone shows at the register, computed offline.

At login the app receives a per-device code secret and from then on computes a new code every
30 seconds by itself (TOTP-style, like RFC 6238 but over HMAC-SHA256 and a message that also binds
the card number and device slot), because store basements have no signal. The register scans the
code and the server accepts the current time step ±1, so a screenshot or a photo of someone else's
phone is useless after about a minute. The payload is digits only, so it fits Code 128 (charset C)
and a version-1 QR code.

Payload: 26 ASCII digits, no separators
    card number  16 digits (the member's public card number, Luhn check digit included)
    device slot   2 digits, 00-99, zero-padded
    step mod 100  2 digits, zero-padded: lets the server pick the step without trying every one
    OTP           6 digits, zero-padded

Computing the OTP (what the iOS/Android app implements)
    step    = floor(unix_seconds / 30), from the device clock (Unix time is UTC by definition)
    secret  = RFC 4648 base32 decoding of the `code_secret` string received at login
              (standard alphabet A-Z2-7, no padding; add "=" up to a multiple of 8 characters if
              your decoder needs it) -> 32 bytes
    message = the 50 bytes
                  ASCII "tsunagari-member-code-v1"            (24 bytes)
                  0x00                                       (1 byte)
                  card number as ASCII digits                 (16 bytes)
                  slot as an unsigned byte                    (1 byte)
                  step as an unsigned 64-bit big-endian int   (8 bytes, as HOTP's counter)
    digest  = HMAC-SHA256(key=secret, data=message)         (32 bytes)
    offset  = digest[31] & 0x0F                             (RFC 4226 section 5.3 dynamic truncation,
                                                             using the last byte as RFC 6238 does)
    number  = (digest[offset] & 0x7F) << 24 | digest[offset + 1] << 16
              | digest[offset + 2] << 8 | digest[offset + 3]
    otp     = number mod 1_000_000, left-padded with "0" to 6 digits
    payload = card number + slot (2 digits) + (step mod 100, 2 digits) + otp

    Test vector (pinned in tests/unit/test_member_codes.py):
        secret       the bytes 0x00, 0x01, ..., 0x1f
                     (code_secret "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ")
        card number  2123456789012343, slot 3
        time         2023-11-14T22:13:20Z (Unix 1700000000), so step 56666666
        OTP          914987
        payload      21234567890123430366914987

The device secret itself is derived by the server (accounts.device_secrets).

Verifying (server): parse the scan, look up the device by card number and slot, re-derive the
secret, then try the steps within ±1 of now whose last two digits match and compare the OTP in
constant time. A code stays valid for up to three steps, so the caller should accept each
(device, step) at most once, e.g. by requiring the matched step to exceed the last one accepted.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import msgspec

from accounts.device_secrets import CODE_STEP_S, MAX_DEVICE_SLOT, check_secret, check_slot
from accounts.rules import CARD_NUMBER_LENGTH, is_valid_card_number

STEP_S = CODE_STEP_S
OTP_DIGITS = 6
CODE_LENGTH = 26

_OTP_PREFIX = b"tsunagari-member-code-v1\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STEP = timedelta(seconds=STEP_S)
_SLOT_DIGITS = 2
_STEP_LOW_DIGITS = 2
_STEP_LOW_MODULUS = 10**_STEP_LOW_DIGITS
# With a wider window two candidate steps would share their last two digits.
_MAX_SKEW_STEPS = (_STEP_LOW_MODULUS - 1) // 2


class ScannedCode(msgspec.Struct, frozen=True):
    """A 26-digit rotating code as read by the register, not yet verified."""

    card_number: str
    slot: int
    step_low: int
    otp: str


class StaticCard(msgspec.Struct, frozen=True):
    """A bare card number; whether the program accepts one is the caller's decision."""

    card_number: str


def time_step(at: datetime) -> int:
    """floor(Unix seconds / STEP_S), in exact integer arithmetic."""
    _check_aware(at)
    return (at - _EPOCH) // _STEP


def step_window(step: int) -> tuple[datetime, datetime]:
    """The half-open interval [start, end) of a step, in UTC."""
    start = _EPOCH + step * _STEP
    return start, start + _STEP


def code_expires_at(at: datetime) -> datetime:
    """When the code shown at `at` rotates: the app schedules its next refresh for this moment."""
    return step_window(time_step(at))[1]


def one_time_password(secret: bytes, card_number: str, slot: int, step: int) -> str:
    """The OTP_DIGITS-digit password for one card, device slot and step (see the module docstring)."""
    check_secret(secret)
    _check_card_number(card_number)
    check_slot(slot)
    if not 0 <= step < 2**64:
        raise ValueError("the step must fit an unsigned 64-bit integer")
    message = _OTP_PREFIX + card_number.encode("ascii") + slot.to_bytes(1, "big") + step.to_bytes(8, "big")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFF_FFFF
    return str(number % 10**OTP_DIGITS).zfill(OTP_DIGITS)


def member_code(card_number: str, slot: int, secret: bytes, at: datetime) -> str:
    """The 26-digit payload shown at `at`; the server-side twin of what the app computes."""
    step = time_step(at)
    otp = one_time_password(secret, card_number, slot, step)
    return f"{card_number}{slot:0{_SLOT_DIGITS}d}{step % _STEP_LOW_MODULUS:0{_STEP_LOW_DIGITS}d}{otp}"


def parse_scanned(text: str) -> ScannedCode | StaticCard | None:
    """What a scanned or keyed string is: a rotating code, a static card number, or neither."""
    candidate = text.strip()
    if not _is_ascii_digits(candidate):
        return None
    if len(candidate) == CODE_LENGTH:
        card_number = candidate[:CARD_NUMBER_LENGTH]
        rest = candidate[CARD_NUMBER_LENGTH:]
        slot = int(rest[:_SLOT_DIGITS])
        if not is_valid_card_number(card_number) or slot > MAX_DEVICE_SLOT:
            return None
        return ScannedCode(
            card_number=card_number,
            slot=slot,
            step_low=int(rest[_SLOT_DIGITS : _SLOT_DIGITS + _STEP_LOW_DIGITS]),
            otp=rest[_SLOT_DIGITS + _STEP_LOW_DIGITS :],
        )
    if len(candidate) == CARD_NUMBER_LENGTH and is_valid_card_number(candidate):
        return StaticCard(card_number=candidate)
    return None


def candidate_step(code: ScannedCode, now: datetime, skew_steps: int = 1) -> int | None:
    """The one step within `skew_steps` of now whose last two digits are the code's, if any: the step
    the code claims to be made for, known before its OTP is checked (its validity follows from it)."""
    if not 0 <= skew_steps <= _MAX_SKEW_STEPS:
        raise ValueError(f"skew_steps must be between 0 and {_MAX_SKEW_STEPS}")
    current = time_step(now)
    for step in range(current - skew_steps, current + skew_steps + 1):
        if step >= 0 and step % _STEP_LOW_MODULUS == code.step_low:
            return step
    return None


def verify(code: ScannedCode, secret: bytes, now: datetime, skew_steps: int = 1) -> int | None:
    """The step the code was made for, if it is within `skew_steps` of now and its OTP matches.

    The skew absorbs phone clocks that drift and the seconds between showing and scanning.
    """
    step = candidate_step(code, now, skew_steps)
    if step is None:
        return None
    expected = one_time_password(secret, code.card_number, code.slot, step).encode()
    return step if hmac.compare_digest(expected, code.otp.encode()) else None


def code_text(code: ScannedCode) -> str:
    """The code as scanned (its 26 digits), which identifies its use while it is valid."""
    return f"{code.card_number}{code.slot:0{_SLOT_DIGITS}d}{code.step_low:0{_STEP_LOW_DIGITS}d}{code.otp}"


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit alone accepts other scripts' digits and superscripts, which int() and scanners do not.
    return text.isascii() and text.isdigit()


def _check_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("member codes need a timezone-aware datetime")


def _check_card_number(card_number: str) -> None:
    if not (_is_ascii_digits(card_number) and is_valid_card_number(card_number)):
        raise ValueError("not a valid card number")
