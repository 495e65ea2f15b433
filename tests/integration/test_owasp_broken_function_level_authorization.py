"""OWASP API5:2023 Broken function level authorization: every /v1 operation, called by each kind of caller
(nobody, a member, a marketer, an admin, a register), answers as the role table says, and a refused call
writes nothing.

The role table, stated here rather than read from the code: members use /v1/app, registers /v1/pos, staff
/v1/console; of the console, only an admin manages stores and their terminals and reviews check-in fraud
(flags and unflags members), as the console's pages already require (docs/console.md). The console's pages
are tried likewise in test_console_attacks.py (`test_a_marketer_cannot_post_to_an_admin_route`,
`test_a_marketer_cannot_open_an_admin_page_and_sees_no_link_to_it`,
`test_api_tokens_and_console_cookies_do_not_stand_in_for_each_other`).
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
from tests.integration.owasp_support import (
    REFUSED_CALLER,
    Operation,
    World,
    described_operations,
    make_world,
    send,
    valid_body,
    valid_query,
)

SLOT = {"slot": "999"}  # a device slot nobody has
CALLERS = ("anonymous", "member", "marketer", "admin", "terminal")
ADMIN_ONLY = {
    "POST /v1/console/stores",
    "PATCH /v1/console/stores/{store_id}",
    "DELETE /v1/console/stores/{store_id}",
    "GET /v1/console/stores/{store_id}/terminals",
    "POST /v1/console/stores/{store_id}/terminals",
    "PATCH /v1/console/terminals/{terminal_id}",
    "POST /v1/console/terminals/{terminal_id}/secret",
    "GET /v1/console/fraud/check-ins",
    "PUT /v1/console/members/{member_id}/check-in-flag",
    "DELETE /v1/console/members/{member_id}/check-in-flag",
}
# Open to anyone: they take credentials (or a refresh token) in the body.
OPEN = {
    "POST /v1/app/members",
    "POST /v1/app/sessions",
    "POST /v1/app/sessions/refresh",
    "POST /v1/console/sessions",
    "POST /v1/console/sessions/refresh",
}


def allowed(operation: Operation) -> set[str]:
    if str(operation) in OPEN:
        return set(CALLERS)
    if operation.path.startswith("/v1/app/"):
        return {"member"}
    if operation.path.startswith("/v1/pos/"):
        return {"terminal"}
    assert operation.path.startswith("/v1/console/"), operation
    return {"admin"} if str(operation) in ADMIN_ONLY else {"marketer", "admin"}


@pytest.fixture
async def world(
    client: httpx.AsyncClient, admin: dict[str, Any], marketer: dict[str, Any], clock: SettableClock
) -> World:
    return await make_world(client, admin, marketer, clock.now().date())


def nothing_named(operation: Operation, world: World) -> str:
    """The path naming objects that do not exist: an allowed caller reaches the handler and finds nothing,
    so the sweep changes no store, campaign or device it needs later."""
    return world.path(operation, **{name: str(uuid.uuid4()) for name in operation.path_parameters} | SLOT)


def test_the_role_table_names_every_operation_and_the_code_guards_the_same_ones(
    settings: Settings, clock: SettableClock
) -> None:
    operations, _ = described_operations(settings, clock)
    guarded_for_admins = {str(op) for op in operations if op.admin_only}
    assert guarded_for_admins == ADMIN_ONLY
    assert {str(op) for op in operations} >= OPEN
    for operation in operations:
        expected_scheme = {"member": "member", "terminal": "pos_signature", "admin": "staff"}
        if str(operation) in OPEN:
            assert operation.security is None, operation
        else:
            (surface,) = {expected_scheme.get(c, "staff") for c in allowed(operation)}
            assert operation.security == surface, operation


async def test_every_operation_refuses_every_caller_the_role_table_does_not_name_and_writes_nothing(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings, clock: SettableClock
) -> None:
    operations, _ = described_operations(settings, clock)
    before = await fingerprint(db)
    wrong: list[str] = []
    for operation in operations:
        for caller in set(CALLERS) - allowed(operation):
            answer = await send(
                client,
                caller,
                world.callers,
                operation.method,
                nothing_named(operation, world),
                valid_body(operation, world),
                params=valid_query(operation, world),
            )
            staff_but_not_admin = caller == "marketer" and str(operation) in ADMIN_ONLY
            expected = (403, "staff_role_required") if staff_but_not_admin else (401, None)
            if answer.status_code != expected[0] or (
                expected[1] is not None and answer.json().get("code") != expected[1]
            ):
                wrong.append(f"{operation} as {caller}: {answer.status_code} {answer.text[:120]}")
            elif answer.headers["content-type"] != "application/problem+json":
                wrong.append(f"{operation} as {caller}: not a problem")
    assert wrong == [], "\n".join(wrong)
    await assert_nothing_written(db, before)


async def test_every_operation_lets_the_callers_the_role_table_names_through(
    client: httpx.AsyncClient, world: World, settings: Settings, clock: SettableClock
) -> None:
    """Past authorization the handler runs: it may find the object missing (404) or the password wrong, but
    never answers as if the caller were not allowed."""
    operations, _ = described_operations(settings, clock)
    wrong: list[str] = []
    for operation in operations:
        for caller in sorted(allowed(operation)):
            answer = await send(
                client,
                caller,
                world.callers,
                operation.method,
                nothing_named(operation, world),
                valid_body(operation, world),
                params=valid_query(operation, world),
            )
            refused = answer.status_code in {401, 403} and answer.json()["code"] in REFUSED_CALLER
            if refused or answer.status_code >= 500:
                wrong.append(f"{operation} as {caller}: {answer.status_code} {answer.text[:120]}")
    assert wrong == [], "\n".join(wrong)
