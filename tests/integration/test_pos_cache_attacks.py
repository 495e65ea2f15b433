"""Attacks on the per-process terminal cache (issue 12): a terminal or store changed through one process
(or behind the app's back) while another process has the terminal cached must be refused there at once."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from tests.conftest import serving
from tests.integration.factories import TerminalCredentials, bearer, signed_headers
from tests.integration.problems import assert_problem

WHOAMI = "/v1/pos/terminal"
_stamps = itertools.count()


@pytest.fixture(scope="module")
def other_process_url(settings: Settings, clock: SettableClock) -> Iterator[str]:
    """A second app on the same database, with its own terminal cache, as another worker process has."""
    with serving(settings, clock) as url:
        yield url


@pytest.fixture
async def other_process(other_process_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=other_process_url, timeout=30) as client:
        yield client


async def whoami(
    client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock
) -> httpx.Response:
    """A signed GET of the terminal's identity; each call signed with its own timestamp (no replay)."""
    stamp = int(clock.now().timestamp()) - next(_stamps) % 250
    return await client.get(WHOAMI, headers=signed_headers(terminal, "GET", WHOAMI, timestamp=stamp))


async def cached_in(client: httpx.AsyncClient, terminal: TerminalCredentials, clock: SettableClock) -> None:
    for _ in range(2):  # the second request is answered from the process's cache
        response = await whoami(client, terminal, clock)
        assert response.status_code == 200, response.text


async def test_a_terminal_disabled_through_one_process_is_refused_by_another_at_once(
    client: httpx.AsyncClient,
    other_process: httpx.AsyncClient,
    terminal: TerminalCredentials,
    admin: dict[str, Any],
    clock: SettableClock,
) -> None:
    await cached_in(other_process, terminal, clock)
    disabled = await client.patch(
        f"/v1/console/terminals/{terminal.terminal_id}", json={"enabled": False}, headers=bearer(admin)
    )
    assert disabled.status_code == 200, disabled.text
    assert_problem(await whoami(other_process, terminal, clock), 403, "pos_terminal_disabled")
    enabled = await client.patch(
        f"/v1/console/terminals/{terminal.terminal_id}", json={"enabled": True}, headers=bearer(admin)
    )
    assert enabled.status_code == 200, enabled.text
    assert (await whoami(other_process, terminal, clock)).status_code == 200


async def test_a_store_closed_or_archived_through_one_process_stops_its_terminals_in_another(
    client: httpx.AsyncClient,
    other_process: httpx.AsyncClient,
    terminal: TerminalCredentials,
    admin: dict[str, Any],
    clock: SettableClock,
) -> None:
    store = f"/v1/console/stores/{terminal.store_id}"
    await cached_in(other_process, terminal, clock)
    closed = await client.patch(store, json={"status": "closed"}, headers=bearer(admin))
    assert closed.status_code == 200, closed.text
    assert_problem(await whoami(other_process, terminal, clock), 403, "pos_terminal_disabled")
    reopened = await client.patch(store, json={"status": "open"}, headers=bearer(admin))
    assert reopened.status_code == 200, reopened.text
    await cached_in(other_process, terminal, clock)
    archived = await client.delete(store, headers=bearer(admin))
    assert archived.status_code == 204, archived.text
    assert_problem(await whoami(other_process, terminal, clock), 403, "pos_terminal_disabled")


async def test_a_terminal_disabled_or_deleted_in_sql_is_refused_by_every_process_at_once(
    client: httpx.AsyncClient,
    other_process: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
) -> None:
    """Operators fix things in psql too: the trigger on `pos_terminals` bumps the version for them."""
    for process in (client, other_process):
        await cached_in(process, terminal, clock)
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            text("UPDATE pos_terminals SET disabled_at = now() WHERE id = :id"), {"id": terminal.terminal_id}
        )
    for process in (client, other_process):
        assert_problem(await whoami(process, terminal, clock), 403, "pos_terminal_disabled")
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            text("DELETE FROM pos_terminals WHERE id = :id"), {"id": terminal.terminal_id}
        )
    for process in (client, other_process):
        assert_problem(await whoami(process, terminal, clock), 401, "pos_terminal_unknown")


async def test_a_store_closed_in_sql_stops_its_terminals_in_every_process_at_once(
    client: httpx.AsyncClient,
    other_process: httpx.AsyncClient,
    terminal: TerminalCredentials,
    clock: SettableClock,
    db: Database,
) -> None:
    """The module promises "a disabled terminal or store is refused from the next request on, in every
    process"; only terminal changes have a trigger, so a store closed or archived outside stores.service
    (psql, a data migration, a bulk script) must bump the version some other way."""
    for process in (client, other_process):
        await cached_in(process, terminal, clock)
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            text("UPDATE stores SET status = 'closed' WHERE id = :id"), {"id": terminal.store_id}
        )
    for process in (client, other_process):
        assert_problem(await whoami(process, terminal, clock), 403, "pos_terminal_disabled")
