from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accounts.errors import InvalidEmail, RefreshTokenExpired, RefreshTokenRevoked, WeakPassword
from accounts.rules import (
    RefreshVerdict,
    check_password_policy,
    is_valid_card_number,
    limited_address,
    luhn_check_digit,
    new_card_number,
    normalised_email,
    refresh_verdict,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


def test_emails_are_trimmed_and_lower_cased() -> None:
    assert normalised_email("  Hanako@Example.JP ") == "hanako@example.jp"


@pytest.mark.parametrize(
    "email", ["", "hanako", "@example.jp", "hanako@", "hanako@localhost", "a b@c.jp", "a@.jp"]
)
def test_non_addresses_are_rejected(email: str) -> None:
    with pytest.raises(InvalidEmail):
        normalised_email(email)


@pytest.mark.parametrize("password", ["short", "x" * 257, "hanako@example.jp"])
def test_password_policy(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password_policy(password, "hanako@example.jp")


def test_card_numbers_are_sixteen_digits_with_a_luhn_check() -> None:
    assert luhn_check_digit("7992739871") == "3"  # the textbook example
    numbers = {new_card_number() for _ in range(200)}
    assert len(numbers) == 200
    assert all(is_valid_card_number(number) for number in numbers)
    tampered = next(iter(numbers))
    tampered = tampered[:-1] + str((int(tampered[-1]) + 1) % 10)
    assert not is_valid_card_number(tampered)


def test_refresh_verdicts() -> None:
    assert (
        refresh_verdict(rotated_at=None, revoked_at=None, expires_at=LATER, now=NOW) is RefreshVerdict.ROTATE
    )
    assert (
        refresh_verdict(rotated_at=NOW, revoked_at=None, expires_at=LATER, now=NOW) is RefreshVerdict.REUSED
    )
    with pytest.raises(RefreshTokenRevoked):
        refresh_verdict(rotated_at=NOW, revoked_at=NOW, expires_at=LATER, now=NOW)
    with pytest.raises(RefreshTokenExpired):
        refresh_verdict(rotated_at=None, revoked_at=None, expires_at=NOW, now=NOW)


@pytest.mark.parametrize(
    ("host", "counted"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4 seen through an IPv6 socket
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # one subscriber's /64: one bucket
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        (None, "unknown"),
        ("", "unknown"),
        ("testclient", "testclient"),
        ("x" * 500, "x" * 64),
    ],
)
def test_per_address_limits_count_an_ipv4_address_or_an_ipv6_subscriber(
    host: str | None, counted: str
) -> None:
    assert limited_address(host) == counted
