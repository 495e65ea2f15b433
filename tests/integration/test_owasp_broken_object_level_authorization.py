"""OWASP API1:2023 Broken object level authorization: every id a caller can put in a path, a query or a body
names only what that caller may act on; an id that names nothing, or names an object of another kind, or
another member's object, is refused with a problem (404 `*_not_found`; 422 `unknown_store` for a store the
offers are asked about; 409 for an offer that exists but is not offered) and writes nothing.

The console serves one retailer (no tenants), so its ids are tried with ids of nothing and of other kinds
of object; the app's members can name only their own devices and visible offers; a register acts only
for its own store.

Proved elsewhere and referenced, not repeated: app routes act only on the token's member
(test_member_isolation.py::test_each_member_endpoint_acts_only_on_the_token_owner), a register cannot return
another store's receipt (test_hot_path_attacks.py::test_a_register_cannot_return_another_stores_receipt) nor
see another store (test_pos_signatures.py::test_each_terminal_sees_only_its_own_store), a coupon a
register names must be the member's
(test_offers_loop.py::test_a_coupon_the_register_names_must_be_the_member_s_and_qualify), the console's pages
with missing or foreign ids
(test_console_attacks.py::test_missing_or_foreign_ids_in_a_form_path_are_refused_and_write_nothing).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from tests.integration.db_fingerprint import assert_nothing_written, fingerprint
from tests.integration.factories import bearer
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
from tests.integration.register import log_in_again

# Who may call each operation with a path id (API5's table): the console's admin routes need an admin.
ADMIN_PATHS = (
    "/v1/console/stores/{store_id}",
    "/v1/console/terminals/",
    "/v1/console/members/{member_id}/check",
)


@pytest.fixture
async def world(
    client: httpx.AsyncClient, admin: dict[str, Any], marketer: dict[str, Any], clock: SettableClock
) -> World:
    return await make_world(client, admin, marketer, clock.now().date())


def caller_of(operation: Operation) -> str:
    if operation.security == "member":
        return "member"
    return "admin" if operation.path.startswith(ADMIN_PATHS) else "marketer"


def with_path_ids(operations: list[Operation]) -> list[Operation]:
    return [op for op in operations if op.path_parameters]


def wrong_ids(operation: Operation, world: World) -> dict[str, dict[str, str]]:
    """For each way of being wrong, the path's ids: naming nothing, or naming an object of another kind
    (the store's id where a member's is expected, and so on)."""
    ids = world.ids()
    kinds = [k for k in ids if k != "slot"]
    nothing = {name: str(uuid.uuid4()) for name in operation.path_parameters} | {"slot": "9"}
    other_kind = {
        name: ids[kinds[(kinds.index(name) + 1) % len(kinds)]] if name in kinds else "8"
        for name in operation.path_parameters
    }
    return {"nothing": nothing, "another kind": other_kind}


# Deleting what is not there changes nothing and says so: DELETE is idempotent.
IDEMPOTENT_DELETES = {"DELETE /v1/console/members/{member_id}/check-in-flag"}


def test_every_operation_with_a_path_id_is_tried(settings: Settings, clock: SettableClock) -> None:
    operations, _ = described_operations(settings, clock)
    named = {name for op in with_path_ids(operations) for name in op.path_parameters}
    assert named == {"store_id", "terminal_id", "member_id", "campaign_id", "offer_id", "slot"}


async def test_every_path_id_naming_nothing_or_another_kind_of_object_is_not_found_and_writes_nothing(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings, clock: SettableClock
) -> None:
    operations, _ = described_operations(settings, clock)
    wrong: list[str] = []
    for operation in with_path_ids(operations):
        for how, ids in wrong_ids(operation, world).items():
            before = await fingerprint(db)
            answer = await send(
                client,
                caller_of(operation),
                world.callers,
                operation.method,
                world.path(operation, **ids),
                valid_body(operation, world),
                params=valid_query(operation, world),
            )
            code = answer.json().get("code", "") if answer.content else ""
            if str(operation) in IDEMPOTENT_DELETES and answer.status_code == 204:
                pass
            elif answer.status_code != 404 or not code.endswith("_not_found"):
                wrong.append(f"{operation} with an id of {how}: {answer.status_code} {answer.text[:120]}")
            await assert_nothing_written(db, before)
    assert wrong == [], "\n".join(wrong)


async def test_ids_in_queries_and_bodies_must_name_what_they_claim(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    """The same for ids carried in a query or a body: a member to preview, a store to check in at, a store
    whose offers to list (a store named in a query or a body is `422 unknown_store` where the offers speak
    of it, `404 store_not_found` elsewhere)."""
    nobody, no_store = str(uuid.uuid4()), str(uuid.uuid4())
    tries: list[tuple[str, str, str, Any, dict[str, str]]] = [
        (
            "marketer",
            "GET",
            f"/v1/console/campaigns/{world.campaign_id}/preview",
            None,
            {"member_id": nobody},
        ),
        (
            "marketer",
            "GET",
            f"/v1/console/campaigns/{world.campaign_id}/preview",
            None,
            {"member_id": world.store_id},
        ),
        ("member", "GET", "/v1/app/offers", None, {"store_id": no_store}),
        ("member", "GET", "/v1/app/offers", None, {"store_id": world.member_id}),
        ("member", "POST", "/v1/app/check-ins", check_in_at(world, no_store), {}),
        ("member", "POST", "/v1/app/check-ins", check_in_at(world, world.offer_id), {}),
    ]
    wrong = []
    for caller, method, path, body, params in tries:
        before = await fingerprint(db)
        answer = await send(client, caller, world.callers, method, path, body, params=params)
        code = answer.json().get("code", "")
        refused = (answer.status_code, code.endswith("_not_found")) == (404, True) or (
            answer.status_code,
            code,
        ) == (422, "unknown_store")
        if not refused:
            wrong.append(f"{method} {path} {params or body}: {answer.status_code} {answer.text[:120]}")
        await assert_nothing_written(db, before)
    assert wrong == [], "\n".join(wrong)


def check_in_at(world: World, store_id: str) -> dict[str, Any]:
    operation = Operation("POST", "/v1/app/check-ins", "member", False, "CheckInRequest")
    body: dict[str, Any] = valid_body(operation, world)
    return body | {"store_id": store_id}


async def test_an_offer_cannot_name_a_store_that_does_not_exist(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    operation = Operation("POST", "/v1/console/offers", "staff", False, "OfferDraft")
    before = await fingerprint(db)
    for store_ids in ([str(uuid.uuid4())], [world.store_id, world.member_id]):
        body = valid_body(operation, world) | {"store_ids": store_ids}
        answer = await send(client, "marketer", world.callers, "POST", "/v1/console/offers", body)
        assert answer.status_code in {404, 422}, (store_ids, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    await assert_nothing_written(db, before)


async def test_a_member_cannot_revoke_a_device_only_another_member_has(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    """Slots are numbered per member: Bob's second phone is slot 1, which Alice does not have."""
    bob = await log_in_again(client, world.callers.other_member)
    bob_slot = bob.session["device"]["slot"]
    alice = world.callers.member.session
    assert bob_slot not in {
        d["slot"] for d in (await client.get("/v1/app/devices", headers=bearer(alice))).json()
    }
    before = await fingerprint(db)
    answer = await client.delete(f"/v1/app/devices/{bob_slot}", headers=bearer(alice))
    assert_problem(answer, 404, "device_not_found")
    await assert_nothing_written(db, before)
    bobs = (await client.get("/v1/app/devices", headers=bearer(bob.session))).json()
    assert bob_slot in {d["slot"] for d in bobs}


async def test_a_member_cannot_clip_an_offer_members_cannot_see(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    """A draft is not offered to anyone: its id, known from elsewhere, clips nothing and tells nothing of
    the draft."""
    path = f"/v1/console/offers/{world.draft_offer_id}"
    draft = (await send(client, "marketer", world.callers, "GET", path)).json()
    before = await fingerprint(db)
    answer = await send(
        client, "member", world.callers, "POST", f"/v1/app/offers/{world.draft_offer_id}/activate"
    )
    assert_problem(answer, 409, "offer_not_available")
    assert draft["name"] not in answer.text
    assert draft["title"] not in answer.text
    await assert_nothing_written(db, before)
    listed = await client.get("/v1/app/offers", headers=bearer(world.callers.member.session))
    assert world.draft_offer_id not in listed.text
