from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from stores.pos_signature import (
    canonical_request,
    derive_terminal_secret,
    sign,
    signature_matches,
    timestamp_within,
)


def test_canonical_request_is_the_documented_four_lines() -> None:
    body = b'{"software_version":"4.2"}'
    expected = b"POST\n/v1/pos/heartbeat?x=1\n1700000000\n" + hashlib.sha256(body).hexdigest().encode()
    assert canonical_request("post", "/v1/pos/heartbeat?x=1", "1700000000", body) == expected


def test_signature_is_hex_hmac_sha256_under_the_terminal_secret() -> None:
    canonical = canonical_request("GET", "/v1/pos/terminal", "1700000000", b"")
    independent = hmac.new(b"ts_secret", canonical, hashlib.sha256).hexdigest()
    assert sign("ts_secret", canonical) == independent
    assert signature_matches("ts_secret", canonical, independent.upper())
    assert not signature_matches("ts_other", canonical, independent)


def test_terminal_secrets_depend_on_server_key_key_id_and_salt() -> None:
    base = derive_terminal_secret("server-key", "tk_1", b"salt")
    assert base == derive_terminal_secret("server-key", "tk_1", b"salt")
    assert (
        len(
            {
                base,
                derive_terminal_secret("other-key", "tk_1", b"salt"),
                derive_terminal_secret("server-key", "tk_2", b"salt"),
                derive_terminal_secret("server-key", "tk_1", b"pepper"),
            }
        )
        == 4
    )


def test_timestamp_window() -> None:
    now = datetime.fromtimestamp(1_700_000_000, UTC)
    assert timestamp_within("1700000300", now, 300)
    assert timestamp_within("1699999700", now, 300)
    assert not timestamp_within("1700000301", now, 300)
    assert not timestamp_within("-5", now, 300)
    assert not timestamp_within("1.7e9", now, 300)
    assert not timestamp_within("9" * 40, now, 300)
