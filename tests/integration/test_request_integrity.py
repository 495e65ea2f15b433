"""What every request gets, whatever it asks: strict bodies, answers instead of errors when a dependency
is down, a transaction that is always closed, and nothing left behind by a request that failed."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import func, select

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from points.tables import Purchase
from stores.tables import Store
from tests.conftest import serving
from tests.integration.factories import TerminalCredentials, bearer, sign_up, signed_headers
from tests.integration.problems import assert_problem
from tests.integration.register import pos, sale
from tests.integration.test_pos_signatures import example_client
from tests.tcp_proxy import proxy_to


@pytest.mark.parametrize(
    ("field", "value"),
    [("total_minor", "100"), ("points_to_redeem", "0"), ("total_minor", 100.0), ("total_minor", True)],
)
async def test_a_number_sent_otherwise_is_refused(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
    field: str,
    value: object,
) -> None:
    body = sale(100, at=clock.now()) | {field: value}
    response = await pos(client, clock, terminal, "/v1/pos/purchases", body)
    assert_problem(response, 400, "validation_failed")
    assert response.json()["errors"][0]["key"] == field
    async with db.unit_of_work() as uow:
        assert (await uow.session.execute(select(func.count()).select_from(Purchase))).scalar_one() == 0


async def test_strings_for_numbers_are_refused_on_app_bodies(
    client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    member = await sign_up(client)
    store = (await client.get("/v1/console/stores", headers=bearer(admin))).json()
    check_in = {
        "store_id": store["items"][0]["id"] if store["items"] else "0190a0a0-0000-7000-8000-000000000000",
        "latitude": "35.68",
        "longitude": 139.76,
        "accuracy_m": 10,
        "fix_at": clock.now().isoformat(),
        "trigger": "user_tap",
    }
    headers = bearer(member) | {"Idempotency-Key": "strict-check-in"}
    assert_problem(
        await client.post("/v1/app/check-ins", json=check_in, headers=headers), 400, "validation_failed"
    )


async def test_times_without_an_offset_are_refused_in_queries(client: httpx.AsyncClient) -> None:
    member = await sign_up(client)
    for params in (
        {"since": "2026-01-01T00:00:00"},
        {"since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00"},
    ):
        response = await client.get("/v1/app/timeline", params=params, headers=bearer(member))
        assert_problem(response, 400, "validation_failed")


async def test_rejected_requests_log_no_error(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad tokens and bad bodies are refused before any handler runs; their transaction must still be
    closed (a dangling one is reported by asyncio at error level when it is garbage-collected)."""
    member = await sign_up(client)
    caplog.set_level(logging.ERROR)
    for _ in range(10):
        assert_problem(
            await client.get("/v1/app/points", headers={"Authorization": "Bearer nonsense"}),
            401,
            "access_token_invalid",
        )
        assert_problem(
            await client.post("/v1/app/events", content=b"{not json", headers=bearer(member)),
            400,
            "bad_request",
        )
        assert_problem(
            await client.post("/v1/app/events", json={"events": "none"}, headers=bearer(member)),
            400,
            "validation_failed",
        )
        assert_problem(
            await client.post("/v1/pos/purchases", json={"receipt_id": 1}), 401, "pos_signature_missing"
        )
        assert_problem(
            await client.post("/v1/pos/heartbeat", json={"software_version": "1"}),
            401,
            "pos_signature_missing",
        )
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0.2)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_a_bad_body_is_judged_only_once_its_sender_is_known(
    client: httpx.AsyncClient,
    terminal: TerminalCredentials,
    marketer: dict[str, Any],
    admin: dict[str, Any],
) -> None:
    """Without credentials, or with refused ones, a body the schema refuses (malformed, mistyped, or with
    a NUL) hears 401, as a good one does, and a marketer's for an admin's operation 403: nothing about
    the body is told before the caller is known and allowed."""
    member = await sign_up(client)
    bodies = [b"{not json", b'{"events": "none"}', b'{"events": [{"kind": "app_open", "x": "\\u0000"}]}']
    for headers in ({}, {"Authorization": "Bearer nonsense"}):
        for body in bodies:
            response = await client.post("/v1/app/events", content=body, headers=headers)
            assert_problem(response, 401, "access_token_invalid")
    for body in bodies:
        response = await client.post("/v1/app/events", content=body, headers=bearer(member))
        assert response.status_code == 400, response.text
    bad_sale = b'{"receipt_id": 1}'
    unsigned = await client.post("/v1/pos/purchases", content=bad_sale)
    assert_problem(unsigned, 401, "pos_signature_missing")
    wrongly_signed = await client.post(
        "/v1/pos/purchases",
        content=bad_sale,
        headers=signed_headers(terminal, "POST", "/v1/pos/purchases", bad_sale, secret="ts_not-the-secret"),
    )
    assert wrongly_signed.status_code == 401, wrongly_signed.text
    signed = await client.post(
        "/v1/pos/purchases",
        content=bad_sale,
        headers=signed_headers(terminal, "POST", "/v1/pos/purchases", bad_sale),
    )
    assert_problem(signed, 400, "validation_failed")
    bad_store = {"surprise": 1}
    by_marketer = await client.post("/v1/console/stores", json=bad_store, headers=bearer(marketer))
    assert_problem(by_marketer, 403, "staff_role_required")
    by_admin = await client.post("/v1/console/stores", json=bad_store, headers=bearer(admin))
    assert_problem(by_admin, 400, "validation_failed")


async def test_a_database_outage_is_a_503_that_the_example_pos_client_rides_out(
    settings: Settings, terminal: TerminalCredentials, clock: SettableClock, db: Database
) -> None:
    assert settings.database_url is not None
    with (
        proxy_to(settings.database_url) as database,
        serving(
            msgspec.structs.replace(settings, database_url=database.url_through(settings.database_url)), clock
        ) as url,
    ):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            database.block()
            down = await pos(http, clock, terminal, "/v1/pos/purchases", sale(500, at=clock.now()))
            assert_problem(down, 503, "service_unavailable")
            assert int(down.headers["retry-after"]) >= 1
            assert_problem(await http.get("/readyz"), 503, "not_ready")

            pos_client = example_client(url, terminal)
            posting = asyncio.create_task(
                asyncio.to_thread(
                    pos_client.request,
                    "POST",
                    "/v1/pos/purchases",
                    sale(700, at=clock.now(), receipt="OUTAGE-1"),
                    idempotency_key="outage-sale-0001",
                )
            )
            await asyncio.sleep(1.0)  # the client's first attempt meets the outage
            assert not posting.done()
            database.unblock()
            status, body = await posting
    assert status == 201, body
    async with db.unit_of_work() as uow:
        posted = await uow.session.execute(select(func.count()).where(Purchase.receipt_id == "OUTAGE-1"))
        assert posted.scalar_one() == 1


async def test_readiness_names_the_dependency_that_is_down(settings: Settings, clock: SettableClock) -> None:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    with proxy_to(settings.database_url) as database, proxy_to(settings.redis_url) as redis:
        routed = msgspec.structs.replace(
            settings,
            database_url=database.url_through(settings.database_url),
            redis_url=redis.url_through(settings.redis_url),
        )
        with serving(routed, clock) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                assert (await http.get("/readyz")).status_code == 200
                database.block()
                down = await http.get("/readyz")
                assert_problem(down, 503, "not_ready")
                assert [f.split(":")[0] for f in down.json()["failing"]] == ["database"]
                database.unblock()
                redis.block()
                down = await http.get("/readyz")
                assert_problem(down, 503, "not_ready")
                assert [f.split(":")[0] for f in down.json()["failing"]] == ["redis"]
                redis.unblock()
                assert (await http.get("/readyz")).status_code == 200


async def test_a_failed_use_case_keeps_only_what_it_registered_to_keep(
    db: Database, clock: SettableClock
) -> None:
    def store(code: str) -> Store:
        now = clock.now()
        return Store(
            code=code,
            name=code,
            address="-",
            latitude=35.0,
            longitude=139.0,
            check_in_radius_m=100,
            time_zone="Asia/Tokyo",
            status="open",
            created_at=now,
            updated_at=now,
            geofence_enabled=True,
        )

    async def keep(uow: Any) -> None:
        uow.session.add(store("KEPT-OUTCOME"))

    async def failing_use_case() -> None:
        async with db.unit_of_work() as uow:
            uow.session.add(store("ROLLED-BACK"))
            await uow.session.flush()
            uow.keep_on_failure(keep)
            raise RuntimeError("the use case fails after writing")

    with pytest.raises(RuntimeError):
        await failing_use_case()
    async with db.unit_of_work() as uow:
        codes = (await uow.session.execute(select(Store.code).order_by(Store.code))).scalars().all()
    assert codes == ["KEPT-OUTCOME"]


async def test_a_replayed_refresh_token_revokes_its_family_and_nothing_else_of_the_request(
    client: httpx.AsyncClient,
) -> None:
    member = await sign_up(client)
    first = member["tokens"]["refresh_token"]
    rotated = await client.post("/v1/app/sessions/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200, rotated.text
    assert_problem(
        await client.post("/v1/app/sessions/refresh", json={"refresh_token": first}),
        401,
        "refresh_token_reused",
    )
    newest = rotated.json()["refresh_token"]
    assert_problem(
        await client.post("/v1/app/sessions/refresh", json={"refresh_token": newest}),
        401,
        "refresh_token_revoked",
    )


async def test_sold_at_far_from_now_is_refused(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> None:
    for at in (clock.now() + timedelta(days=150), clock.now() - timedelta(days=400)):
        response = await pos(client, clock, terminal, "/v1/pos/purchases", sale(100, at=at))
        assert_problem(response, 422, "sale_time_out_of_range")
    century = json.loads(json.dumps(sale(100, at=clock.now()))) | {"sold_at": "9999-12-31T23:00:00-05:00"}
    assert_problem(await pos(client, clock, terminal, "/v1/pos/purchases", century), 400, "validation_failed")
