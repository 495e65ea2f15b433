from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from domain.ids import new_id
from domain.keys import FIRST_KEY_ID, KeyRing, SigningKey
from domain.pagination import InvalidCursor, decode_cursor, encode_cursor
from domain.tokens import Audience, TokenExpired, TokenInvalid, issue_access_token, read_access_token
from infra.db import is_retryable

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY = SigningKey(key_id="k2", secret="k" * 40)
PREVIOUS = SigningKey(key_id=FIRST_KEY_ID, secret="p" * 40, retire_at=NOW + timedelta(minutes=5))
RING = KeyRing(KEY, (PREVIOUS,))


def test_ids_are_uuid7_and_sort_by_creation_time() -> None:
    earlier, later = new_id(at_ms=1_700_000_000_000), new_id(at_ms=1_700_000_000_001)
    assert earlier.version == 7
    assert earlier.variant == uuid.RFC_4122
    assert earlier < later
    assert len({new_id(at_ms=1) for _ in range(1000)}) == 1000


def test_cursors_round_trip_and_reject_garbage() -> None:
    some_id = new_id()
    assert decode_cursor(encode_cursor(some_id)) == some_id
    assert decode_cursor(None) is None
    for garbage in ("%%%", "abc", "AAAA"):
        with pytest.raises(InvalidCursor):
            decode_cursor(garbage)


def test_access_tokens_check_key_audience_and_expiry() -> None:
    subject = new_id()
    token, expires_at = issue_access_token(KEY, subject, Audience.STAFF, "admin", NOW, timedelta(minutes=15))
    claims = read_access_token(RING, token, Audience.STAFF, NOW + timedelta(minutes=14))
    assert (claims.subject_id, claims.role, claims.expires_at) == (subject, "admin", expires_at)
    with pytest.raises(TokenExpired):
        read_access_token(RING, token, Audience.STAFF, NOW + timedelta(minutes=15))
    with pytest.raises(TokenInvalid):
        read_access_token(RING, token, Audience.MEMBER, NOW)
    with pytest.raises(TokenInvalid):
        read_access_token(KeyRing(SigningKey(key_id="k2", secret="x" * 40)), token, Audience.STAFF, NOW)
    with pytest.raises(TokenInvalid):
        read_access_token(RING, token + "x", Audience.STAFF, NOW)


def test_access_tokens_name_their_key_and_a_previous_key_verifies_until_it_retires() -> None:
    subject = new_id()
    token, _ = issue_access_token(KEY, subject, Audience.MEMBER, None, NOW, timedelta(minutes=15))
    assert jwt.get_unverified_header(token)["kid"] == "k2"
    old, _ = issue_access_token(PREVIOUS, subject, Audience.MEMBER, None, NOW, timedelta(minutes=15))
    assert read_access_token(RING, old, Audience.MEMBER, NOW + timedelta(minutes=4)).subject_id == subject
    with pytest.raises(TokenInvalid, match="retired or unknown key"):
        read_access_token(RING, old, Audience.MEMBER, NOW + timedelta(minutes=5))
    renamed, _ = issue_access_token(
        SigningKey(key_id="k9", secret=KEY.secret), subject, Audience.MEMBER, None, NOW, timedelta(minutes=15)
    )
    with pytest.raises(TokenInvalid, match="retired or unknown key"):
        read_access_token(RING, renamed, Audience.MEMBER, NOW)


def test_a_token_from_before_key_ids_is_read_as_signed_by_the_first_key() -> None:
    subject = new_id()
    claims = {"iss": "tsunagari", "sub": str(subject), "aud": "member", "exp": int(NOW.timestamp()) + 900}
    legacy = jwt.encode(claims, PREVIOUS.secret, algorithm="HS256")
    assert "kid" not in jwt.get_unverified_header(legacy)
    assert read_access_token(RING, legacy, Audience.MEMBER, NOW).subject_id == subject
    with pytest.raises(TokenInvalid):
        read_access_token(RING, legacy, Audience.MEMBER, NOW + timedelta(minutes=5))
    with pytest.raises(TokenInvalid):
        read_access_token(RING, jwt.encode(claims, KEY.secret, algorithm="HS256"), Audience.MEMBER, NOW)


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ConnectionRefusedError(), True),
        (PoolTimeout("no connection"), True),
        (DBAPIError("SELECT 1", None, _DriverError("40P01")), True),  # deadlock
        (DBAPIError("SELECT 1", None, _DriverError("40001")), True),  # serialization failure
        (DBAPIError("SELECT 1", None, _DriverError("57P01")), True),  # server shutting down
        (DBAPIError("SELECT 1", None, _DriverError("23505")), False),  # a unique violation is a bug to see
        (ValueError("bad"), False),
    ],
)
def test_which_database_errors_a_client_is_told_to_retry(error: BaseException, retryable: bool) -> None:
    assert is_retryable(error) is retryable
