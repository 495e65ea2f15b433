"""OWASP API4:2023 Unrestricted resource consumption: what one caller can make the service read, store or
compute is bounded. Every page size and every list or text in a request body has a described maximum that
the server enforces; every body one byte over the limit is refused before anyone reads it; sign-ups are
limited per client address and logins per client address as well as per account, and past a limit
nothing is hashed or written.

Proved elsewhere and not repeated here: check-in attempts per member and hour
(test_check_ins.py::test_too_many_attempts_are_refused), logins per account
(test_member_accounts.py::test_login_attempts_are_limited_per_account), the offers list writing at most once a
minute (test_offers_loop.py::test_a_member_cannot_make_the_list_write_more_than_once_a_minute), Redis calls
that time out (test_fault_injection.py::test_a_redis_that_stops_answering_holds_no_request_for_long).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import func, select

from accounts.tables import Member
from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from tests.conftest import serving
from tests.integration.db_fingerprint import assert_nothing_written, fingerprint
from tests.integration.factories import PASSWORD, sign_up, unique_email
from tests.integration.owasp_support import (
    Operation,
    World,
    described_operations,
    make_world,
    request_body_types,
    send,
    valid_body,
    valid_query,
)
from tests.integration.problems import assert_problem

SIGN_UPS_PER_ADDRESS = 3
LOGINS_PER_ADDRESS = 4


@pytest.fixture(scope="module")
def limited_url(settings: Settings, clock: SettableClock) -> Iterator[str]:
    """The app with small per-address limits (the session's app has them out of the way)."""
    small = msgspec.structs.replace(
        settings,
        sign_ups_per_address_per_window=SIGN_UPS_PER_ADDRESS,
        login_attempts_per_address_per_window=LOGINS_PER_ADDRESS,
    )
    with serving(small, clock) as url:
        yield url


@pytest.fixture
async def limited(limited_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=limited_url, timeout=60) as client:
        yield client


def some_address() -> str:
    """A client address no other test uses (the limits' counters live in Redis for the whole session)."""
    return str(ipaddress.IPv4Address("100.64.0.0") + secrets.randbelow(2**22))


def coming_from(address: str) -> dict[str, str]:
    """What a proxy the server trusts (loopback, uvicorn's default) adds for a client at `address`."""
    return {"X-Forwarded-For": address}


def sign_up_body() -> dict[str, str]:
    return {"email": unique_email(), "password": PASSWORD, "display_name": "Burst"}


async def members(db: Database) -> int:
    async with db.unit_of_work() as uow:
        count: int = (await uow.session.execute(select(func.count()).select_from(Member))).scalar_one()
        return count


async def test_a_burst_of_sign_ups_from_one_address_creates_no_more_accounts_than_the_limit(
    limited: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    address = some_address()
    answers = await asyncio.gather(
        *(
            limited.post("/v1/app/members", json=sign_up_body(), headers=coming_from(address))
            for _ in range(10)
        )
    )
    assert sorted(a.status_code for a in answers) == [201] * SIGN_UPS_PER_ADDRESS + [429] * 7
    for refused in (a for a in answers if a.status_code == 429):
        assert_problem(refused, 429, "too_many_sign_ups")
        assert 0 < int(refused.headers["retry-after"]) <= settings.sign_up_window_s
    assert await members(db) == SIGN_UPS_PER_ADDRESS
    before = await fingerprint(db)
    again = await limited.post("/v1/app/members", json=sign_up_body(), headers=coming_from(address))
    assert_problem(again, 429, "too_many_sign_ups")
    await assert_nothing_written(db, before)
    elsewhere = await limited.post(
        "/v1/app/members", json=sign_up_body(), headers=coming_from(some_address())
    )
    assert elsewhere.status_code == 201, elsewhere.text


async def test_refused_sign_ups_count_too_so_an_address_cannot_probe_emails_without_end(
    client: httpx.AsyncClient, limited: httpx.AsyncClient, db: Database
) -> None:
    """Taken emails and weak passwords are attempts: sign-up cannot be used to test which emails have an
    account, nor to spend the server's hashing, beyond the limit."""
    taken = (await sign_up(client, email=unique_email()))["member"]["email"]
    address = some_address()
    for _ in range(SIGN_UPS_PER_ADDRESS):
        answer = await limited.post(
            "/v1/app/members", json=sign_up_body() | {"email": taken}, headers=coming_from(address)
        )
        assert_problem(answer, 409, "email_taken")
    fresh = await limited.post("/v1/app/members", json=sign_up_body(), headers=coming_from(address))
    assert_problem(fresh, 429, "too_many_sign_ups")
    assert await members(db) == 1


async def test_the_limits_count_the_address_the_proxy_saw_and_an_ipv6_subscriber_as_one(
    limited: httpx.AsyncClient,
) -> None:
    """Behind a proxy the server trusts, a client that sends its own X-Forwarded-For only adds entries in
    front of the one the proxy appends; and an IPv6 subscriber, free to use any address of its /64, is one
    address to the limits."""
    real = some_address()
    for _ in range(SIGN_UPS_PER_ADDRESS):
        spoofed = f"{some_address()}, {real}"
        answer = await limited.post("/v1/app/members", json=sign_up_body(), headers=coming_from(spoofed))
        assert answer.status_code == 201, answer.text
    spoofed = f"{some_address()}, {real}"
    refused = await limited.post("/v1/app/members", json=sign_up_body(), headers=coming_from(spoofed))
    assert_problem(refused, 429, "too_many_sign_ups")

    subscriber = ipaddress.IPv6Network(
        f"2001:db8:{secrets.randbelow(2**16):x}:{secrets.randbelow(2**16):x}::/64"
    )
    addresses = [str(subscriber[secrets.randbelow(2**64)]) for _ in range(SIGN_UPS_PER_ADDRESS + 1)]
    answers = [
        await limited.post("/v1/app/members", json=sign_up_body(), headers=coming_from(a)) for a in addresses
    ]
    assert [a.status_code for a in answers] == [201] * SIGN_UPS_PER_ADDRESS + [429]


async def test_logins_from_one_address_are_limited_across_accounts_and_surfaces(
    client: httpx.AsyncClient, limited: httpx.AsyncClient, settings: Settings
) -> None:
    """Credential stuffing: one wrong password for each of many accounts never trips the per-account limit,
    so the address is counted too, for members and staff alike."""
    member = await sign_up(client)  # made on the app with the limits out of the way
    address = some_address()
    for _ in range(LOGINS_PER_ADDRESS):
        wrong = await limited.post(
            "/v1/app/sessions",
            json={"email": unique_email(), "password": "wrong password!"},
            headers=coming_from(address),
        )
        assert_problem(wrong, 401, "invalid_credentials")
    for path in ("/v1/app/sessions", "/v1/console/sessions"):
        right = await limited.post(
            path,
            json={"email": member["member"]["email"], "password": PASSWORD},
            headers=coming_from(address),
        )
        assert_problem(right, 429, "too_many_login_attempts_from_address")
        assert 0 < int(right.headers["retry-after"]) <= settings.login_window_s
    elsewhere = await limited.post(
        "/v1/app/sessions",
        json={"email": member["member"]["email"], "password": PASSWORD},
        headers=coming_from(some_address()),
    )
    assert elsewhere.status_code == 200, elsewhere.text


async def test_the_per_account_login_limit_holds_across_addresses(
    client: httpx.AsyncClient, limited: httpx.AsyncClient, settings: Settings
) -> None:
    """Guessing one account's password from many addresses: each address stays under its own limit."""
    email = (await sign_up(client))["member"]["email"]  # made where the limits are out of the way
    for _ in range(settings.login_attempts_per_window):
        wrong = await limited.post(
            "/v1/app/sessions",
            json={"email": email, "password": "wrong password!"},
            headers=coming_from(some_address()),
        )
        assert_problem(wrong, 401, "invalid_credentials")
    right = await limited.post(
        "/v1/app/sessions", json={"email": email, "password": PASSWORD}, headers=coming_from(some_address())
    )
    assert_problem(right, 429, "too_many_login_attempts")


# --- sizes -------------------------------------------------------------------------------------------


@pytest.fixture
async def world(
    client: httpx.AsyncClient, admin: dict[str, Any], marketer: dict[str, Any], clock: SettableClock
) -> World:
    return await make_world(client, admin, marketer, clock.now().date())


def caller_of(operation: Operation) -> str:
    """Someone the operation lets in (test_owasp_broken_function_level_authorization.py has the table)."""
    if operation.security == "member":
        return "member"
    if operation.security == "pos_signature":
        return "terminal"
    return "admin" if operation.security == "staff" else "anonymous"


def page_sizes(operations: list[Operation]) -> list[tuple[Operation, str, int]]:
    """(operation, parameter, maximum) of every integer query parameter that says how many to answer."""
    found = []
    for operation in operations:
        for name, schema in operation.query.items():
            if name in {"limit", "count"}:
                options = schema.get("oneOf", [schema])
                (integer,) = [s for s in options if s.get("type") == "integer"]
                assert "maximum" in integer, f"{operation} {name} has no maximum"
                found.append((operation, name, int(integer["maximum"])))
    return found


async def test_every_page_size_has_a_maximum_the_server_enforces(
    client: httpx.AsyncClient, world: World, settings: Settings, clock: SettableClock
) -> None:
    operations, _ = described_operations(settings, clock)
    sized = page_sizes(operations)
    assert len(sized) >= 9, [str(op) for op, _, _ in sized]  # every list of the app, console and review
    wrong = []
    for operation, name, maximum in sized:
        for size, expected in ((maximum, 200), (maximum + 1, 400), (10**9, 400)):
            answer = await send(
                client,
                caller_of(operation),
                world.callers,
                operation.method,
                world.path(operation),
                params=valid_query(operation, world) | {name: str(size)},
            )
            if answer.status_code != expected:
                wrong.append(f"{operation} {name}={size}: {answer.status_code} {answer.text[:100]}")
            elif expected == 400:
                assert_problem(answer, 400, "validation_failed")
    assert wrong == [], "\n".join(wrong)


# Bounded otherwise than by a length in the schema, and tried where that bound is.
BOUNDED_OTHERWISE = {
    # timeline.rules: at most 20 names, lists of at most 20 strings, 2,048 bytes as JSON; an event over it
    # is rejected on its own (test_timeline.py, `invalid_properties`).
    "POST /v1/app/events.events[].properties.*",
    "POST /v1/app/events.events[].properties.*[]",
    # Keyed by weekday: seven names at most (the schema gives values only).
    "POST /v1/console/stores.opening_hours.*",
    "PATCH /v1/console/stores/{store_id}.opening_hours.*",
}
# A pattern bounds a text when it is anchored at both ends and repeats nothing without an upper bound.
_BOUNDED_PATTERN = re.compile(r"^\^[^*+]*\$$")
_OPEN_REPEAT = re.compile(r"\{\d+,\}")


def _bounded_text(schema: dict[str, Any]) -> bool:
    if {"maxLength", "enum", "const", "format"} & schema.keys():
        return True
    pattern = str(schema.get("pattern", ""))
    return bool(_BOUNDED_PATTERN.match(pattern)) and not _OPEN_REPEAT.search(pattern)


def unbounded(schema: dict[str, Any], components: dict[str, Any], where: str) -> list[str]:
    """Where a JSON schema lets a list, a map or a text grow without a bound."""
    if "$ref" in schema:
        return unbounded(components[schema["$ref"].rsplit("/", 1)[-1]], components, where)
    found = []
    for option in schema.get("oneOf", []) + schema.get("anyOf", []):
        found += unbounded(option, components, where)
    kind = schema.get("type")
    if kind == "array":
        if "maxItems" not in schema:
            found.append(f"{where}[]")
        for item in schema.get("prefixItems", []):
            found += unbounded(item, components, f"{where}[]")
        if isinstance(schema.get("items"), dict):
            found += unbounded(schema["items"], components, f"{where}[]")
    elif kind == "string" and not _bounded_text(schema):
        found.append(where)
    elif kind == "object":
        for name, child in schema.get("properties", {}).items():
            found += unbounded(child, components, f"{where}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            if "maxProperties" not in schema:
                found.append(f"{where}.*")
            found += unbounded(extra, components, f"{where}.*")
    return found


def test_no_request_body_takes_a_list_a_map_or_a_text_without_a_bound(
    settings: Settings, clock: SettableClock
) -> None:
    """Read from the types the server decodes bodies into, not from the OpenAPI description (which leaves
    some constraints inside maps out)."""
    found = set()
    for operation, body_type in request_body_types(settings, clock).items():
        (schema,), components = msgspec.json.schema_components([body_type])
        found.update(unbounded(schema, components, operation))
    assert found == BOUNDED_OTHERWISE


async def test_batches_one_item_over_their_maximum_are_refused_and_write_nothing(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings, clock: SettableClock
) -> None:
    operations, components = described_operations(settings, clock)
    by_name = {str(op): op for op in operations}
    batches = [
        ("POST /v1/app/events", "EventBatch", "events"),
        ("POST /v1/pos/purchases", "PurchaseRequest", "lines"),
        ("POST /v1/pos/purchases", "PurchaseRequest", "offer_ids"),
        ("POST /v1/console/offers", "OfferDraft", "store_ids"),
        ("POST /v1/console/campaigns", "CampaignDraft", "variants"),
    ]
    before = await fingerprint(db)
    for name, schema_name, field in batches:
        operation = by_name[name]
        maximum = int(components[schema_name]["properties"][field]["maxItems"])
        body = valid_body(operation, world)
        one = body[field][0] if body.get(field) else world.store_id
        body[field] = [one] * (maximum + 1)
        answer = await send(
            client, caller_of(operation), world.callers, operation.method, operation.path, body
        )
        assert_problem(answer, 400, "validation_failed")
        assert field in answer.text, (name, answer.text[:300])
    repeated = {"segment": {"all": [{"field": "stage", "in": ["basic"] * 6}]}}
    answer = await send(client, "marketer", world.callers, "POST", "/v1/console/segments/estimate", repeated)
    assert_problem(answer, 400, "validation_failed")
    await assert_nothing_written(db, before)


async def test_every_body_one_byte_over_the_limit_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings, clock: SettableClock
) -> None:
    """With the credentials each operation takes, so it is the size that refuses it, not the caller."""
    operations, _ = described_operations(settings, clock)
    oversized = b'{"padding": "' + b"x" * settings.max_request_body_bytes + b'"}'
    before = await fingerprint(db)
    wrong = []
    for operation in (op for op in operations if op.body_schema is not None):
        answer = await send(
            client,
            caller_of(operation),
            world.callers,
            operation.method,
            world.path(operation),
            raw=oversized,
        )
        if answer.status_code != 413 or answer.json().get("code") != "request_too_large":
            wrong.append(f"{operation}: {answer.status_code} {answer.text[:100]}")
    assert wrong == [], "\n".join(wrong)
    await assert_nothing_written(db, before)
