from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from domain.ids import new_id
from domain.pagination import InvalidCursor, decode_cursor, encode_cursor
from domain.tokens import Audience, TokenExpired, TokenInvalid, issue_access_token, read_access_token
from infra.db import is_retryable

KEY = "k" * 40
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


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
    claims = read_access_token(KEY, token, Audience.STAFF, NOW + timedelta(minutes=14))
    assert (claims.subject_id, claims.role, claims.expires_at) == (subject, "admin", expires_at)
    with pytest.raises(TokenExpired):
        read_access_token(KEY, token, Audience.STAFF, NOW + timedelta(minutes=15))
    with pytest.raises(TokenInvalid):
        read_access_token(KEY, token, Audience.MEMBER, NOW)
    with pytest.raises(TokenInvalid):
        read_access_token("x" * 40, token, Audience.STAFF, NOW)
    with pytest.raises(TokenInvalid):
        read_access_token(KEY, token + "x", Audience.STAFF, NOW)


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
