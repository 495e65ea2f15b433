from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.keys import KeyRing, SigningKey

NOW = datetime(2027, 1, 1, tzinfo=UTC)
CURRENT = SigningKey(key_id="k3", secret="c" * 40)
OVERLAPPING = SigningKey(key_id="k2", secret="o" * 40, retire_at=NOW + timedelta(seconds=1))
RETIRED = SigningKey(key_id="k1", secret="r" * 40, retire_at=NOW)
RING = KeyRing(CURRENT, (OVERLAPPING, RETIRED))


def test_the_current_key_and_previous_keys_before_their_retire_time_are_accepted_current_first() -> None:
    assert RING.accepted(NOW) == (CURRENT, OVERLAPPING)
    assert RING.accepted(NOW + timedelta(seconds=1)) == (CURRENT,)
    assert RING.accepted(NOW - timedelta(days=1)) == (CURRENT, OVERLAPPING, RETIRED)


def test_a_key_id_names_its_key_until_the_key_retires() -> None:
    assert RING.usable("k3", NOW + timedelta(days=3650)) == CURRENT
    assert RING.usable("k2", NOW) == OVERLAPPING
    assert RING.usable("k2", NOW + timedelta(seconds=1)) is None
    assert RING.usable("k1", NOW) is None  # retired at exactly its retire time
    assert RING.usable("k9", NOW) is None
