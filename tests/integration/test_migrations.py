"""Migrations run up from an empty database, down one step, and match the models exactly."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from commands.migrate import alembic_config, downgrade, upgrade
from infra.db import asyncpg_url
from migrations.models import include_object, target_metadata
from tests.conftest import DatabaseFactory


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    assert head is not None
    return head


# What the models do not describe: triggers and the functions they run (their definitions).
_TRIGGERS_AND_FUNCTIONS = text(
    """
    SELECT 'trigger ' || tgname || ' ON ' || CAST(tgrelid AS regclass) FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'function ' || proname || ': ' || prosrc FROM pg_proc
    WHERE pronamespace = CAST('public' AS regnamespace)
    """
)


async def _inspect(url: str) -> tuple[set[str], str | None, list[object]]:
    engine = create_async_engine(asyncpg_url(url))

    def read(connection: Connection) -> tuple[set[str], str | None, list[object]]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        return (
            set(inspect(connection).get_table_names()),
            context.get_current_revision(),
            compare_metadata(context, target_metadata()),
        )

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


def test_upgrade_from_empty_matches_the_models(new_database: DatabaseFactory) -> None:
    url = new_database.create("migrate")
    upgrade(url)
    tables, revision, differences = asyncio.run(_inspect(url))
    assert revision == _head()
    assert {table.name for table in target_metadata().sorted_tables} <= tables
    assert differences == [], (
        f"models and migrations differ; run alembic revision --autogenerate: {differences}"
    )


async def _triggers_and_functions(url: str) -> set[str]:
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            return set((await connection.execute(_TRIGGERS_AND_FUNCTIONS)).scalars())
    finally:
        await engine.dispose()


def test_downgrade_one_step_and_upgrade_again(new_database: DatabaseFactory) -> None:
    url = new_database.create("downgrade")
    upgrade(url)
    at_head = asyncio.run(_triggers_and_functions(url))
    downgrade(url, "-1")
    _, revision, one_step_down = asyncio.run(_inspect(url))
    script = ScriptDirectory.from_config(alembic_config(url)).get_revision(_head())
    assert revision == script.down_revision
    changed = one_step_down != [] or asyncio.run(_triggers_and_functions(url)) != at_head
    assert changed, "the newest migration's downgrade changed nothing"
    upgrade(url)
    _, revision, differences = asyncio.run(_inspect(url))
    assert revision == _head()
    assert differences == []
    assert asyncio.run(_triggers_and_functions(url)) == at_head
