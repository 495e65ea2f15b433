"""Whether a request wrote anything: a digest of every table, compared before and after."""

from __future__ import annotations

from sqlalchemy import text

from infra.db import Database
from migrations.models import target_metadata


async def fingerprint(db: Database) -> dict[str, str]:
    """Every table's row count and a digest of its rows: equal fingerprints, nothing written."""
    digests: dict[str, str] = {}
    async with db.unit_of_work() as uow:
        for table in target_metadata().sorted_tables:
            row = (
                await uow.session.execute(
                    text(
                        f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "  # noqa: S608 - the schema's own table names
                        f'FROM "{table.name}" t'
                    )
                )
            ).one()
            digests[table.name] = f"{row[0]}:{row[1]}"
    return digests


async def assert_nothing_written(db: Database, before: dict[str, str]) -> None:
    after = await fingerprint(db)
    changed = sorted(name for name in before if before[name] != after.get(name))
    assert changed == [], f"tables written by a refused request: {changed}"
