"""OWASP API3:2023 Broken object property level authorization: no caller can set a property it may only
read (mass assignment), and no answer carries a property its reader must not see.

Every write operation is sent its valid body plus one property it does not take: the read-only and
privileged ones the API has (ids, balances, roles, states, timestamps, secrets...). Each must be refused as
a whole (400 `validation_failed`, the body is strict) with nothing written, not silently ignored nor
applied. Property exposure is read from the described answers: no secret, hash or salt in any, save the
two secrets handed over once on purpose.

Proved elsewhere: a profile change validates and persists only its own fields
(test_member_accounts.py::test_profile_update_validates_and_persists), numbers sent as strings are refused
(test_request_integrity.py).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from tests.integration.db_fingerprint import assert_nothing_written, fingerprint
from tests.integration.owasp_support import (
    Operation,
    World,
    described_operations,
    make_world,
    send,
    valid_body,
    valid_query,
)
from tests.integration.problems import assert_problem

# Properties a caller must never set where a body does not take them, with values an attacker would send.
PRIVILEGED: dict[str, Any] = {
    "id": "00000000-0000-7000-8000-000000000001",
    "member_id": "00000000-0000-7000-8000-000000000002",
    "staff_id": "00000000-0000-7000-8000-000000000003",
    "store_id": "00000000-0000-7000-8000-000000000004",
    "terminal_id": "00000000-0000-7000-8000-000000000005",
    "role": "admin",
    "is_admin": True,
    "balance": 1_000_000,
    "balances": {"available": 1_000_000},
    "points": 1_000_000,
    "available": 1_000_000,
    "lifetime_earned": 1_000_000,
    "owed": 0,
    "miles": 1_000_000,
    "stage": "diamond",
    "status": "active",
    "state": "active",
    "card_number": "2000000000000000",
    "email": "someone-else@example.jp",
    "password_hash": "$argon2id$",
    "created_at": "2000-01-01T00:00:00Z",
    "updated_at": "2000-01-01T00:00:00Z",
    "redemptions_used": 0,
    "points_used": 0,
    "key_id": "tk_forged",
    "secret": "forged secret forged secret forged",
    "enabled": True,
    "flagged": False,
    "deliveries": {"sent": 0},
}
# Secrets an answer carries on purpose, once: the device's code secret at login, a terminal's at creation.
HANDED_OVER = {"DeviceCredentials.code_secret", "TerminalCredentials.secret"}
SECRET_LOOKING = re.compile(r"password|hash|salt|digest|secret|private|signing")


@pytest.fixture
async def world(
    client: httpx.AsyncClient, admin: dict[str, Any], marketer: dict[str, Any], clock: SettableClock
) -> World:
    return await make_world(client, admin, marketer, clock.now().date())


def caller_of(operation: Operation) -> str:
    if operation.security == "member":
        return "member"
    if operation.security == "pos_signature":
        return "terminal"
    return "admin" if operation.security == "staff" else "anonymous"


def takes(operation: Operation, components: dict[str, Any]) -> set[str]:
    """The top-level properties the operation's body takes."""
    assert operation.body_schema is not None
    return set(components[operation.body_schema].get("properties", {}))


async def test_no_write_takes_a_property_it_does_not_declare_and_a_refused_one_writes_nothing(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings, clock: SettableClock
) -> None:
    operations, components = described_operations(settings, clock)
    writes = [op for op in operations if op.body_schema is not None]
    assert len(writes) >= 25, [str(op) for op in writes]
    wrong: list[str] = []
    for operation in writes:
        before = await fingerprint(db)
        for name in sorted(set(PRIVILEGED) - takes(operation, components)):
            body = valid_body(operation, world) | {name: PRIVILEGED[name]}
            answer = await send(
                client,
                caller_of(operation),
                world.callers,
                operation.method,
                world.path(operation),
                body,
                params=valid_query(operation, world),
            )
            if answer.status_code != 400 or answer.json().get("code") != "validation_failed":
                wrong.append(f"{operation} + {name}: {answer.status_code} {answer.text[:100]}")
        await assert_nothing_written(db, before)
    assert wrong == [], "\n".join(wrong)


async def test_nested_objects_take_no_property_they_do_not_declare(
    client: httpx.AsyncClient, world: World
) -> None:
    """A sale's line cannot say what it earns, a variant cannot say it was sent, an event cannot say whose
    it is."""
    sale_body = valid_body(
        Operation("POST", "/v1/pos/purchases", "pos_signature", False, "PurchaseRequest"), world
    )
    sale_body["lines"][0]["points_earned"] = 1_000_000
    campaign = valid_body(Operation("POST", "/v1/console/campaigns", "staff", False, "CampaignDraft"), world)
    campaign["variants"][0]["sent"] = 1_000_000
    events = valid_body(Operation("POST", "/v1/app/events", "member", False, "EventBatch"), world)
    events["events"][0]["member_id"] = world.other_member_id
    for caller, path, body in [
        ("terminal", "/v1/pos/purchases", sale_body),
        ("marketer", "/v1/console/campaigns", campaign),
        ("member", "/v1/app/events", events),
    ]:
        answer = await send(client, caller, world.callers, "POST", path, body)
        assert_problem(answer, 400, "validation_failed")


async def test_a_member_stays_who_and_what_they_were_after_every_attempt(
    client: httpx.AsyncClient, world: World
) -> None:
    """The effect, seen from the member's side: profile, points and devices as before the attempts."""
    member = world.callers.member
    reads = ("/v1/app/me", "/v1/app/points", "/v1/app/devices")
    before = [(await send(client, "member", world.callers, "GET", path)).json() for path in reads]
    for name, value in PRIVILEGED.items():
        await send(
            client, "member", world.callers, "PATCH", "/v1/app/me", {"display_name": "Mallory", name: value}
        )
    after = [(await send(client, "member", world.callers, "GET", path)).json() for path in reads]
    assert after == before
    assert before[0]["id"] == member.session["member"]["id"]


def test_no_answer_describes_a_secret_hash_or_salt_beyond_the_two_handed_over_once(
    settings: Settings, clock: SettableClock
) -> None:
    _, components = described_operations(settings, clock)
    found = {
        f"{schema_name}.{name}"
        for schema_name, schema in components.items()
        for name in schema.get("properties", {})
        if SECRET_LOOKING.search(name)
    }
    # Request bodies may carry a password (sign-up, login, erasure) or a refresh token: they are no answers.
    requests = {"SignUp.password", "Credentials.password", "PasswordConfirmation.password"}
    assert found - requests == HANDED_OVER
