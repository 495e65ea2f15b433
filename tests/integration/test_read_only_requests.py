"""Requests that only read run on the reader: no transaction around them, and no write possible."""

from __future__ import annotations

import httpx
import pytest
from litestar import HttpMethod
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.transactions import READS_ONLY
from infra.db import Database, create_engine
from infra.settings import Settings
from tests.integration.factories import bearer, sign_up

READ_ONLY_TRANSACTION = "25006"


async def test_the_reader_refuses_any_write(settings: Settings) -> None:
    assert settings.database_url is not None
    db = Database(
        create_engine(settings.database_url, 1),
        reader=create_engine(settings.database_url, 1, read_only=True),
    )
    try:
        async with db.reading_session() as session:
            assert (await session.execute(text("SELECT count(*) FROM members"))).scalar_one() >= 0
            with pytest.raises(DBAPIError) as refused:
                await session.execute(text("CREATE TABLE written_by_a_read (id int)"))
            assert getattr(refused.value.orig, "sqlstate", None) == READ_ONLY_TRANSACTION
    finally:
        await db.dispose()


def test_only_safe_methods_are_marked_as_only_reading(settings: Settings) -> None:
    marked = [
        (handler.handler_name, handler.http_methods)
        for route in create_app(settings).routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get(READS_ONLY)
    ]
    assert len(marked) >= 7, marked  # the app's points, history, devices, nearby, regions, timeline, profile
    assert all(methods == {HttpMethod.GET} for _, methods in marked), marked


async def test_my_reads_answer_from_the_reader(client: httpx.AsyncClient) -> None:
    member = bearer(await sign_up(client))
    for path, params in [
        ("/v1/app/points", {}),
        ("/v1/app/points/history", {}),
        ("/v1/app/devices", {}),
        ("/v1/app/stores/nearby", {"lat": 35.68, "lon": 139.76}),
        ("/v1/app/stores/regions", {"lat": 35.68, "lon": 139.76}),
        ("/v1/app/timeline", {}),
        ("/v1/app/me", {}),
    ]:
        response = await client.get(path, params=params, headers=member)
        assert response.status_code == 200, (path, response.text)
