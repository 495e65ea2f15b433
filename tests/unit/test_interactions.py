from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.interactions import CLIENT_KINDS, PHASE_OF_KIND, InteractionKind, Phase, kinds_in_phase
from timeline.rules import EventRejection, client_event_rejection, properties_are_acceptable

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

EXPECTED_PHASES = {
    "member_joined": "choose",
    "app_opened": "choose",
    "content_viewed": "choose",
    "offer_viewed": "choose",
    "offer_decided": "choose",
    "offer_activated": "choose",
    "push_sent": "choose",
    "push_suppressed": "choose",
    "push_received": "choose",
    "push_opened": "choose",
    "checked_in": "buy",
    "check_in_rejected": "buy",
    "purchased": "buy",
    "points_earned": "buy",
    "points_redeemed": "buy",
    "offer_redeemed": "buy",
    "refunded": "use",
    "points_expired": "use",
    "points_adjusted": "use",
    "stage_reached": "use",
    "profile_updated": "use",
    "shared": "share",
    "review_written": "share",
}


@pytest.mark.parametrize("kind", list(InteractionKind))
def test_each_kind_maps_to_its_phase(kind: InteractionKind) -> None:
    assert PHASE_OF_KIND[kind] == Phase(EXPECTED_PHASES[kind.value])


def test_phases_partition_the_kinds() -> None:
    assert set().union(*(kinds_in_phase(phase) for phase in Phase)) == set(InteractionKind)
    assert sum(len(kinds_in_phase(phase)) for phase in Phase) == len(InteractionKind)


def test_the_app_cannot_report_facts_the_server_owns() -> None:
    for kind in ("purchased", "checked_in", "points_earned", "points_redeemed", "refunded", "offer_redeemed"):
        assert client_event_rejection(kind, NOW, {}, NOW) is EventRejection.KIND_NOT_ALLOWED
    for kind in CLIENT_KINDS:
        assert client_event_rejection(kind, NOW, {}, NOW) is None


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        (NOW - timedelta(days=7), None),
        (NOW - timedelta(days=7, seconds=1), EventRejection.TOO_OLD),
        (NOW + timedelta(minutes=5), None),
        (NOW + timedelta(minutes=5, seconds=1), EventRejection.IN_FUTURE),
    ],
)
def test_time_window(occurred_at: datetime, expected: EventRejection | None) -> None:
    assert client_event_rejection("app_opened", occurred_at, {}, NOW) is expected


def test_unknown_kinds_and_bad_properties() -> None:
    assert client_event_rejection("bought_a_car", NOW, {}, NOW) is EventRejection.KIND_UNKNOWN
    assert properties_are_acceptable({"screen": "home", "count": 3, "ok": True, "tags": ["a", "b"]})
    assert not properties_are_acceptable({"Bad-Name": 1})
    assert not properties_are_acceptable({f"p{i}": i for i in range(21)})
    assert not properties_are_acceptable({"blob": "x" * 3000})
    assert not properties_are_acceptable({"tags": ["t"] * 51})
