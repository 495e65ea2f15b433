"""Account rules: password policy, email normalisation, card numbers, refresh-token rotation, the client
address per-address limits count."""

from __future__ import annotations

import ipaddress
import re
import secrets
import unicodedata
from datetime import datetime
from enum import StrEnum

from accounts.errors import InvalidEmail, LastAdmin, RefreshTokenExpired, RefreshTokenRevoked, WeakPassword

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
CARD_NUMBER_PREFIX = "2"  # an in-store (GS1 "2") range, so cards never collide with product barcodes
CARD_NUMBER_LENGTH = 16


class StaffRole(StrEnum):
    MARKETER = "marketer"
    ADMIN = "admin"


def normalised_email(email: str) -> str:
    """Lower-cased and trimmed; rejects what cannot be an address (the mailbox check is sign-up's job)."""
    candidate = email.strip().lower()
    local, _, domain = candidate.partition("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith(".") or " " in candidate:
        raise InvalidEmail(f"{email!r} is not an email address")
    return candidate


def check_an_admin_remains(other_enabled_admins: int) -> None:
    """Stores, terminals and fraud review are an admin's: taking the last admin away would leave the
    console without anyone to run them (an operator can still create one on the command line)."""
    if other_enabled_admins < 1:
        raise LastAdmin("this is the last enabled admin; make another admin first")


def check_password_policy(password: str, email: str) -> None:
    """NIST SP 800-63B style: length over composition rules, and not the email itself."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().lower() == email:
        raise WeakPassword("the password must not be the email address")


MAX_SEARCH_TEXT_LENGTH = 254  # the longest email address
# Spaces and hyphens a card number is printed or typed with (after NFKC, which folds full-width forms).
_CARD_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]")


def typed_card_number(text: str) -> str | None:
    """The card number in `text` as a person types it from the card ("2123 4567 8901 2345",
    "2123-4567-8901-2345", full-width digits), or None when `text` is not 16 digits once the
    separators are dropped."""
    digits = _CARD_SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    return digits if len(digits) == CARD_NUMBER_LENGTH and digits.isascii() and digits.isdigit() else None


def like_prefix(text: str) -> str:
    """A LIKE pattern (escape character: backslash) for strings that start with `text`, taken literally:
    a `%` or `_` a person typed matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def luhn_check_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def new_card_number() -> str:
    """A random 16-digit member card number with a Luhn check digit, printable as Code 128."""
    body = CARD_NUMBER_PREFIX + "".join(
        str(secrets.randbelow(10)) for _ in range(CARD_NUMBER_LENGTH - len(CARD_NUMBER_PREFIX) - 1)
    )
    return body + luhn_check_digit(body)


def is_valid_card_number(card_number: str) -> bool:
    return (
        len(card_number) == CARD_NUMBER_LENGTH
        and card_number.isascii()
        and card_number.isdigit()
        and luhn_check_digit(card_number[:-1]) == card_number[-1]
    )


class RefreshVerdict(StrEnum):
    ROTATE = "rotate"
    REUSED = "reused"


def refresh_verdict(
    *, rotated_at: datetime | None, revoked_at: datetime | None, expires_at: datetime, now: datetime
) -> RefreshVerdict:
    """What presenting this refresh token means.

    A token already rotated is being replayed: whoever holds it may be an attacker, so the
    caller must revoke the whole family (the legitimate client then logs in again).
    """
    if revoked_at is not None:
        raise RefreshTokenRevoked()
    if rotated_at is not None:
        return RefreshVerdict.REUSED
    if expires_at <= now:
        raise RefreshTokenExpired()
    return RefreshVerdict.ROTATE


IPV6_SUBSCRIBER_PREFIX = 64  # what one IPv6 subscriber is given at least (RFC 6177): one address to a limit
MAX_ADDRESS_LENGTH = 64


def limited_address(host: str | None) -> str:
    """The client address a per-address limit counts: an IPv4 address as it is (an IPv4-mapped IPv6 one
    too), an IPv6 address as its /64 (a subscriber picks any address in it at will), anything else
    (no socket peer, a unix socket's name) as one shared bucket per distinct text."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:MAX_ADDRESS_LENGTH]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_SUBSCRIBER_PREFIX), strict=False))
    return str(address)
