"""Staff login, roles and the store/terminal console."""

from __future__ import annotations

import httpx

from accounts.rules import StaffRole
from domain.clock import SettableClock
from infra.db import Database
from tests.integration.factories import (
    PASSWORD,
    bearer,
    create_store,
    create_terminal,
    staff_login,
    store_draft,
)
from tests.integration.problems import assert_problem


async def test_staff_log_in_refresh_and_log_out(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    session = await staff_login(client, db, clock, StaffRole.MARKETER)
    me = await client.get("/v1/console/me", headers=bearer(session))
    assert me.json()["role"] == "marketer"
    refreshed = await client.post(
        "/v1/console/sessions/refresh", json={"refresh_token": session["tokens"]["refresh_token"]}
    )
    assert refreshed.status_code == 200
    out = await client.post(
        "/v1/console/sessions/logout",
        json={"refresh_token": refreshed.json()["refresh_token"]},
        headers=bearer(refreshed.json()["access_token"]),
    )
    assert out.status_code == 204
    wrong = await client.post(
        "/v1/console/sessions", json={"email": session["staff"]["email"], "password": "nope nope nope"}
    )
    assert_problem(wrong, 401, "invalid_credentials")


async def test_marketer_reads_stores_but_only_admin_changes_them(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    admin = await staff_login(client, db, clock, StaffRole.ADMIN)
    marketer = await staff_login(client, db, clock, StaffRole.MARKETER)
    store = await create_store(client, admin)
    assert (await client.get("/v1/console/stores", headers=bearer(marketer))).status_code == 200
    assert (
        await client.get(f"/v1/console/stores/{store['id']}", headers=bearer(marketer))
    ).status_code == 200
    forbidden = [
        await client.post("/v1/console/stores", json=store_draft(), headers=bearer(marketer)),
        await client.patch(f"/v1/console/stores/{store['id']}", json={"name": "x"}, headers=bearer(marketer)),
        await client.delete(f"/v1/console/stores/{store['id']}", headers=bearer(marketer)),
        await client.post(
            f"/v1/console/stores/{store['id']}/terminals", json={"name": "R"}, headers=bearer(marketer)
        ),
        await client.get(f"/v1/console/stores/{store['id']}/terminals", headers=bearer(marketer)),
    ]
    for response in forbidden:
        assert_problem(response, 403, "staff_role_required")
    assert_problem(await client.get("/v1/console/stores"), 401, "access_token_invalid")


async def test_store_validation_errors(client: httpx.AsyncClient, db: Database, clock: SettableClock) -> None:
    admin = await staff_login(client, db, clock)
    bad_values: list[dict[str, object]] = [
        {"latitude": 91.0},
        {"latitude": -90.5},
        {"longitude": 180.01},
        {"longitude": "east"},
        {"check_in_radius_m": 49},
        {"check_in_radius_m": 5001},
        {"code": "lower-case"},
        {"code": "X"},
        {"name": ""},
        {"status": "demolished"},
    ]
    for overrides in bad_values:
        response = await client.post(
            "/v1/console/stores", json=store_draft(**overrides), headers=bearer(admin)
        )
        assert_problem(response, 400, "validation_failed")
        assert response.json()["errors"], overrides
    zone = await client.post(
        "/v1/console/stores", json=store_draft(time_zone="Asia/Osaka"), headers=bearer(admin)
    )
    assert_problem(zone, 422, "invalid_time_zone")
    page = await client.get("/v1/console/stores", headers=bearer(admin))
    assert page.json()["items"] == []


async def test_store_codes_are_unique(client: httpx.AsyncClient, db: Database, clock: SettableClock) -> None:
    admin = await staff_login(client, db, clock)
    await create_store(client, admin, code="TKY-GINZA")
    again = await client.post("/v1/console/stores", json=store_draft(code="TKY-GINZA"), headers=bearer(admin))
    assert_problem(again, 409, "store_code_taken")


async def test_store_crud_and_cursor_pagination(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    admin = await staff_login(client, db, clock)
    created = [await create_store(client, admin, name=f"Store {n}") for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/console/stores", params=params, headers=bearer(admin))).json()
        seen += [store["id"] for store in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [store["id"] for store in created]

    store_id = created[0]["id"]
    patched = await client.patch(
        f"/v1/console/stores/{store_id}",
        json={"status": "temporarily_closed", "check_in_radius_m": 150},
        headers=bearer(admin),
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["status"], patched.json()["check_in_radius_m"]) == ("temporarily_closed", 150)
    assert patched.json()["name"] == "Store 0"

    assert (await client.delete(f"/v1/console/stores/{store_id}", headers=bearer(admin))).status_code == 204
    assert_problem(
        await client.get(f"/v1/console/stores/{store_id}", headers=bearer(admin)), 404, "store_not_found"
    )
    listed = (await client.get("/v1/console/stores", headers=bearer(admin))).json()["items"]
    assert store_id not in [store["id"] for store in listed]

    assert_problem(
        await client.get("/v1/console/stores", params={"cursor": "%%%"}, headers=bearer(admin)),
        422,
        "invalid_cursor",
    )
    assert_problem(
        await client.get("/v1/console/stores", params={"limit": 0}, headers=bearer(admin)),
        400,
        "validation_failed",
    )
    assert_problem(await client.get("/v1/console/stores/not-a-uuid", headers=bearer(admin)), 404, "not_found")


async def test_terminal_secret_is_shown_once_and_never_stored(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    admin = await staff_login(client, db, clock)
    store = await create_store(client, admin)
    terminal = await create_terminal(client, admin, store["id"])
    listed = await client.get(f"/v1/console/stores/{store['id']}/terminals", headers=bearer(admin))
    assert listed.status_code == 200
    assert terminal.secret not in listed.text
    assert listed.json()["items"][0]["key_id"] == terminal.key_id
    async with db.unit_of_work() as uow:
        dump = await uow.session.connection()
        rows = (await dump.exec_driver_sql("SELECT * FROM pos_terminals")).all()
    assert terminal.secret not in repr(rows)
    assert terminal.secret.encode() not in b"".join(v for row in rows for v in row if isinstance(v, bytes))


async def test_terminals_cannot_be_added_to_unknown_or_archived_stores(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    admin = await staff_login(client, db, clock)
    missing = await client.post(
        "/v1/console/stores/0190a0a0-0000-7000-8000-000000000000/terminals",
        json={"name": "R"},
        headers=bearer(admin),
    )
    assert_problem(missing, 404, "store_not_found")
    store = await create_store(client, admin)
    await client.delete(f"/v1/console/stores/{store['id']}", headers=bearer(admin))
    archived = await client.post(
        f"/v1/console/stores/{store['id']}/terminals", json={"name": "R"}, headers=bearer(admin)
    )
    assert_problem(archived, 409, "store_archived")


async def test_unused_password_login_for_unknown_staff(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/console/sessions", json={"email": "nobody@example.jp", "password": PASSWORD}
    )
    assert_problem(response, 401, "invalid_credentials")
